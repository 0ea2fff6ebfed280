import {
  InvalidOptionError,
  TlsConfigError,
  anyValue,
  group,
  loadTlsMaterial,
  oneOf,
  option,
  optional,
  parseBoolean,
  parseStringList,
  type OptionsInput,
  type PemSource,
  type TlsMaterial,
} from '@naaccord/ipc-shared'

export type ClientAuth = 'require' | 'optional' | 'none'

/** The server's TLS options (`tls`), declared once; no environment variables. */
export const SERVER_TLS_OPTIONS = {
  /** Server certificate (chain), PEM text or file path. */
  cert: option<PemSource>()({ required: true, parse: anyValue<PemSource> }),
  /** Private key of `cert`, PEM text or file path. */
  key: option<PemSource>()({ required: true, parse: anyValue<PemSource> }),
  /** CA bundle that client certificates must chain to. Required unless clientAuth is "none". */
  ca: option<PemSource>()({ parse: anyValue<PemSource | undefined> }),
  /** Client certificates: "require" (mutual TLS, default), "optional", or "none". */
  clientAuth: option<ClientAuth>()({ default: 'require', parse: oneOf(['require', 'optional', 'none']) }),
  /** Lowest TLS version. Default "TLSv1.3"; "TLSv1.2" only when asked. */
  minVersion: option<'TLSv1.3' | 'TLSv1.2'>()({ default: 'TLSv1.3', parse: oneOf(['TLSv1.3', 'TLSv1.2']) }),
  /**
   * Client identities allowed in: each entry matches the certificate's subject CN, a SAN
   * (DNS name or URI), or its SHA-256 fingerprint ("AB:CD:..."). Default: any certificate the CA signed.
   */
  allowClients: option<readonly string[]>()({ parse: optional((name: string, v: unknown) => Object.freeze(parseStringList(name, v))) }),
  /** Watch the files and swap certificates in without a restart. Default true when files are given. */
  watch: option<boolean>()({ parse: optional(parseBoolean) }),
}

export type ServerTlsOptions = OptionsInput<typeof SERVER_TLS_OPTIONS>

export interface ResolvedServerTls {
  readonly material: TlsMaterial
  readonly input: Readonly<{ cert: PemSource; key: PemSource; ca: PemSource | undefined }>
  readonly clientAuth: ClientAuth
  readonly minVersion: 'TLSv1.3' | 'TLSv1.2'
  readonly allowClients: readonly string[] | undefined
  readonly watch: boolean
}

const parseServerTls = group(SERVER_TLS_OPTIONS, {
  shape: 'an object { cert, key, ca }',
  finish: ({ cert, key, ca, clientAuth, minVersion, allowClients, watch }): ResolvedServerTls => {
    if (clientAuth !== 'none' && ca === undefined) {
      throw new TlsConfigError(`tls.ca is required with clientAuth "${clientAuth}": client certificates are checked against it`)
    }
    const input = Object.freeze({ cert, key, ca })
    const material = loadTlsMaterial('tls', input)
    if (allowClients && clientAuth === 'none') {
      throw new InvalidOptionError('tls.allowClients', 'needs client certificates; set clientAuth to "require"')
    }
    return Object.freeze({ material, input, clientAuth, minVersion, allowClients, watch: watch ?? material.files.length > 0 })
  },
})

/** Normalise `tls`: read and check the certificate, key and CA now, so a bad file stops the start. */
export function resolveServerTls(value: ServerTlsOptions): ResolvedServerTls {
  return parseServerTls('tls', value, { env: {}, resolved: {} })
}
