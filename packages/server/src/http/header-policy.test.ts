import http from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { describe, expect, it } from 'vitest'

// Why the header policy (and the body limit's push wrapper) sit on each req/res object instead of
// on subclasses handed to http.createServer({ IncomingMessage, ServerResponse }), Node's
// documented way: Express replaces the prototype of every req and res with its own, so a
// subclass's methods are gone by the time the app answers. When this test fails, Express keeps
// the server's prototypes: switch to the subclasses (header-policy.ts, body-limit.ts).
describe('Express and the prototypes of req and res', () => {
  it('replaces the prototype of a subclassed req and res: a subclass override is not called', async () => {
    const calls: string[] = []
    class Req extends http.IncomingMessage {}
    class Res extends http.ServerResponse<Req> {}
    // The subclass's own writeHead, as the header policy would be.
    Object.defineProperty(Res.prototype, 'writeHead', {
      value: function (this: http.ServerResponse, ...args: unknown[]) {
        calls.push('subclass writeHead')
        return Reflect.apply(http.ServerResponse.prototype.writeHead, this, args) as unknown
      },
    })
    const app = express()
    const seen: boolean[] = []
    app.get('/', (req, res) => {
      seen.push(req instanceof Req, res instanceof Res)
      res.json({ ok: true })
    })
    const server = http.createServer({ IncomingMessage: Req, ServerResponse: Res }, app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const answer = await fetch(`http://127.0.0.1:${port}/`)
      expect(answer.status).toBe(200)
      expect(seen).toEqual([false, false])
      expect(calls).toEqual([])
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})
