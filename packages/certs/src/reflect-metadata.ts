/**
 * The smallest Reflect metadata API that `@peculiar/x509` needs. The library registers its
 * algorithms with tsyringe, which refuses to load unless `Reflect.getMetadata` exists
 * ("tsyringe requires a reflect polyfill", PeculiarVentures/x509 README). We install only the
 * five functions tsyringe calls, and only when no polyfill (reflect-metadata, core-js) is
 * already present, so an application that loads a full polyfill keeps it.
 *
 * This module must be evaluated before `@peculiar/x509`; `x509.ts` imports it first.
 */

type MetadataMap = Map<unknown, unknown>
type PropertyMaps = Map<PropertyKey | undefined, MetadataMap>

interface ReflectMetadata {
  defineMetadata(key: unknown, value: unknown, target: object, property?: PropertyKey): void
  getOwnMetadata(key: unknown, target: object, property?: PropertyKey): unknown
  getMetadata(key: unknown, target: object, property?: PropertyKey): unknown
  hasOwnMetadata(key: unknown, target: object, property?: PropertyKey): boolean
  hasMetadata(key: unknown, target: object, property?: PropertyKey): boolean
  metadata(key: unknown, value: unknown): (target: object, property?: PropertyKey) => void
}

const reflect = Reflect as typeof Reflect & Partial<ReflectMetadata>

if (typeof reflect.getMetadata !== 'function') {
  const store = new WeakMap<object, PropertyMaps>()

  const own = (target: object, property: PropertyKey | undefined, create: boolean): MetadataMap | undefined => {
    let byProperty = store.get(target)
    if (!byProperty) {
      if (!create) return undefined
      byProperty = new Map()
      store.set(target, byProperty)
    }
    let map = byProperty.get(property)
    if (!map && create) {
      map = new Map()
      byProperty.set(property, map)
    }
    return map
  }

  const find = (key: unknown, target: object, property: PropertyKey | undefined): MetadataMap | undefined => {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      const map = own(o, property, false)
      if (map?.has(key)) return map
    }
    return undefined
  }

  const api: ReflectMetadata = {
    defineMetadata: (key, value, target, property) => void own(target, property, true)?.set(key, value),
    getOwnMetadata: (key, target, property) => own(target, property, false)?.get(key),
    getMetadata: (key, target, property) => find(key, target, property)?.get(key),
    hasOwnMetadata: (key, target, property) => own(target, property, false)?.has(key) ?? false,
    hasMetadata: (key, target, property) => find(key, target, property) !== undefined,
    metadata: (key, value) => (target, property) => api.defineMetadata(key, value, target, property),
  }
  for (const [name, fn] of Object.entries(api)) {
    Object.defineProperty(Reflect, name, { value: fn, writable: true, configurable: true })
  }
}

export {}
