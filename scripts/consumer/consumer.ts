// Type-checked with tsc in the consumer project: req.peer reaches an Express app through the
// node:http augmentation shipped in @naaccord/ipc-server's published types.
import express, { type Request } from 'express'
import { serve, requirePeer, type IpcServer, type Peer } from '@naaccord/ipc-server'
import { createClient, type IpcClient } from '@naaccord/ipc-client'

const app = express()
app.get('/whoami', requirePeer({ uids: [0] }), (req: Request, res) => {
  const peer: Peer | undefined = req.peer
  const uid: number | undefined = req.peer?.uid
  const cn: string | undefined = req.peer?.certificate?.commonName
  // @ts-expect-error the peer entry is typed, not any
  const wrong: string = req.peer?.uid
  res.json({ peer, uid, cn, wrong })
})
export const server: Promise<IpcServer> = serve(app, { socketPath: '/run/naaccord/service.sock' })
export const client: IpcClient = createClient({ socketPath: '/run/naaccord/service.sock', expectServer: { uid: 998 } })
