import {
  InvalidOptionError,
  TlsConfigError,
  loadTlsMaterial,
  parseBoolean,
  parseEnum,
  parseStringList,
  rejectUnknown,
  type PemSource,
  type TlsMaterial,
} from '@naaccord/ipc-shared'

export type ClientAuth = 'require' | 'optional' | 'none'

export interface ServerTlsOptions {
  /** Server certificate (chain), PEM text or file path. */
  cert: PemSource
  /** Private key of `cert`, PEM text or file path. */
  key: PemSource
  /** CA bundle that client certificates must chain to. Required unless clientAuth is "none". */
  ca?: PemSource
  /** Client certificates: "require" (mutual TLS, default), "optional", or "none". */
  clientAuth?: ClientAuth
  /** Lowest TLS version. Default "TLSv1.3"; "TLSv1.2" only when asked. */
  minVersion?: 'TLSv1.3' | 'TLSv1.2'
  /**
   * Client identities allowed in: each entry matches the certificate's subject CN, a SAN
   * (DNS name or URI), or its SHA-256 fingerprint ("AB:CD:..."). Default: any certificate the CA signed.
   */
  allowClients?: readonly string[]
  /** Watch the files and swap certificates in without a restart. Default true when files are given. */
  watch?: boolean
}

export interface ResolvedServerTls {
  readonly material: TlsMaterial
  readonly input: Readonly<{ cert: PemSource; key: PemSource; ca: PemSource | undefined }>
  readonly clientAuth: ClientAuth
  readonly minVersion: 'TLSv1.3' | 'TLSv1.2'
  readonly allowClients: readonly string[] | undefined
  readonly watch: boolean
}

const KNOWN = ['cert', 'key', 'ca', 'clientAuth', 'minVersion', 'allowClients', 'watch'] as const

/** Normalise `tls`: read and check the certificate, key and CA now, so a bad file stops the start. */
export function resolveServerTls(value: ServerTlsOptions): ResolvedServerTls {
  if (value === null || typeof value !== 'object') throw new InvalidOptionError('tls', 'must be an object { cert, key, ca }')
  rejectUnknown('tls', value, KNOWN)
  const clientAuth = parseEnum('tls.clientAuth', value.clientAuth ?? 'require', ['require', 'optional', 'none'] as const)
  const minVersion = parseEnum('tls.minVersion', value.minVersion ?? 'TLSv1.3', ['TLSv1.3', 'TLSv1.2'] as const)
  if (clientAuth !== 'none' && value.ca === undefined) {
    throw new TlsConfigError(`tls.ca is required with clientAuth "${clientAuth}": client certificates are checked against it`)
  }
  const input = Object.freeze({ cert: value.cert, key: value.key, ca: value.ca })
  const material = loadTlsMaterial('tls', input)
  const allowClients = value.allowClients === undefined ? undefined : Object.freeze(parseStringList('tls.allowClients', value.allowClients))
  if (allowClients && clientAuth === 'none') {
    throw new InvalidOptionError('tls.allowClients', 'needs client certificates; set clientAuth to "require"')
  }
  const watch = parseBoolean('tls.watch', value.watch ?? material.files.length > 0)
  return Object.freeze({ material, input, clientAuth, minVersion, allowClients, watch })
}
