export { createClient, type IpcClient, type RequestOptions, type CallOptions, type Body } from './client.js'
export { resolveClientOptions, CLIENT_DEFAULTS, type ClientOptions, type ClientTlsOptions, type ExpectServer, type ResolvedClientOptions } from './options.js'
export type { IpcResponse } from './response.js'
export { IDEMPOTENT } from './retry.js'
