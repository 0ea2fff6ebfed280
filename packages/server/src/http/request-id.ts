import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { REQUEST_ID_HEADER } from '@naaccord/ipc-shared'

// A caller's id is kept only if it is short and plain, so it cannot smuggle text into logs.
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Take the caller's `x-request-id` when it is short and plain, else make a UUID; put it on the
 * request (the app and our client, which forwards it, read it there) and echo it on the response,
 * so that the logs of both processes of a call carry the same id.
 *
 * @returns the id, for the request log
 * @example
 * const id = assignRequestId(req, res) // req.headers['x-request-id'] === id
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers[REQUEST_ID_HEADER]
  const id = typeof given === 'string' && VALID_ID.test(given) ? given : randomUUID()
  req.headers[REQUEST_ID_HEADER] = id
  res.setHeader(REQUEST_ID_HEADER, id)
  return id
}
