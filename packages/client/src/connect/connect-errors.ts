import {
  ConnectionLostError,
  IpcError,
  PermissionDeniedError,
  ServiceUnavailableError,
  TlsClientCertRequiredError,
  TlsExpiredError,
  TlsHostnameError,
  TlsPinMismatchError,
  TlsUntrustedError,
} from '@naaccord/ipc-shared'

const kMapped = Symbol('naaccord.mappedError')

/** Say what a socket error means, when only the connector knows (mapRequestError reads it). */
export function attachMappedError(err: Error, mapped: IpcError): void {
  ;(err as Error & { [kMapped]?: IpcError })[kMapped] = mapped
}

/** The error attached by `attachMappedError`, if any. */
export function mappedOf(err: unknown): IpcError | undefined {
  return typeof err === 'object' && err !== null ? (err as { [kMapped]?: IpcError })[kMapped] : undefined
}

type Facts = { subject?: string | undefined; validTo?: string | undefined } | undefined

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'NO_PEER_CERTIFICATE',
])

/** A failed check of the server's certificate, as one of our TLS errors. */
export function tlsVerifyError(code: string, target: string, facts: Facts, detail?: string): IpcError {
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new TlsExpiredError(`the server certificate at ${target} is outside its validity window (${code}); renew it (naaccord-ipc certs rotate)`, facts)
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new TlsHostnameError(`server at ${target}: ${detail ?? 'hostname mismatch'}; set tls.servername or reissue with --name`, facts)
  }
  if (code === 'PIN_MISMATCH') {
    return new TlsPinMismatchError(`server at ${target}: ${detail ?? 'pin mismatch'}; if the key was rotated on purpose, add its pin (naaccord-ipc certs inspect)`, facts)
  }
  const why = UNTRUSTED.has(code) ? code : `${code}`
  return new TlsUntrustedError(`the server certificate at ${target} is not trusted (${why}); give the CA that signed it in tls.ca`, facts)
}

/**
 * TLS alerts by which a server refuses our client certificate (RFC 8446 6.2), as OpenSSL names
 * them in Node's error codes, e.g. ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED,
 * ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, ERR_SSL_TLSV1_ALERT_UNKNOWN_CA. Only an alert means a
 * refusal: an end of stream or a reset without one is a lost connection (retried when safe),
 * whatever the TLS version.
 */
const CLIENT_CERT_ALERT = /^ERR_SSL_\w+_ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/

/** True when `code` is a TLS alert refusing our client certificate. */
export function isClientCertAlert(code: string): boolean {
  return CLIENT_CERT_ALERT.test(code)
}

/** Map a socket-level error (connect, TLS, reset) to our error classes; others come back as they are. */
export function mapConnectError(err: Error, opts: { readonly target: string }): Error {
  if (err instanceof IpcError) return err
  const e = err as NodeJS.ErrnoException
  const code = e.code ?? ''
  switch (code) {
    case 'ENOENT':
      return new ServiceUnavailableError(opts.target, 'no socket file there; is the services server running?', { cause: err })
    case 'EAGAIN': // unix(7): the listener's backlog is full
      return new ServiceUnavailableError(opts.target, 'EAGAIN: the server is not accepting connections fast enough (backlog full)', { cause: err })
    case 'ECONNREFUSED':
      return new ServiceUnavailableError(opts.target, 'connection refused: nothing listens there (a stale socket, or the server is restarting)', { cause: err })
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(opts.target, { cause: err })
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ServiceUnavailableError(opts.target, `${code}: host cannot be reached`, { cause: err })
    case 'ECONNRESET':
    case 'EPIPE':
      return new ConnectionLostError(opts.target, `${code}: the server closed the connection (a refused peer, or a restart)`, { cause: err })
  }
  if (isClientCertAlert(code)) return clientCertRefused(opts.target, code, err)
  return err
}

/**
 * The server refused our client certificate (none, an untrusted one, or one not in its
 * allowClients). `why` is the TLS alert, or what was observed when the server sent none.
 */
export function clientCertRefused(target: string, why: string, cause?: Error): TlsClientCertRequiredError {
  return new TlsClientCertRequiredError(
    `the server at ${target} refused our client certificate (${why}); give tls.cert/tls.key signed by the CA the server trusts, and listed in its allowClients if it has one`,
    undefined,
    cause === undefined ? undefined : { cause },
  )
}
