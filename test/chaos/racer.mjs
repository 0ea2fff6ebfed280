// A start-race contestant of the chaos suite: loads the server once, then obeys stdin lines.
//   go <socketPath>  -> serve(); prints "won <pid>" or "lost <code>" ("lost RAW <message>" for a non-IpcError)
//   close            -> closes the server it won; prints "closed"
//   crash            -> SIGKILL itself while holding (leftovers for the next round)
import readline from 'node:readline'
import { serve, } from '@naaccord/ipc-server'
import { IpcError } from '@naaccord/ipc-shared'

let ipc
const out = (s) => process.stdout.write(`${s}\n`)
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  const [cmd, arg] = line.split(' ')
  if (cmd === 'go') {
    try {
      ipc = await serve((req, res) => res.end('ok'), { socketPath: arg, logger: false, handleSignals: false, acknowledgePlaintextSocket: true, shutdownTimeoutMs: 500 })
      out(`won ${process.pid}`)
    } catch (err) {
      out(err instanceof IpcError ? `lost ${err.code}` : `lost RAW ${String(err?.code ?? '')} ${String(err?.message).split('\n')[0]}`)
    }
  } else if (cmd === 'close') {
    await ipc?.close()
    ipc = undefined
    out('closed')
  } else if (cmd === 'crash') {
    process.kill(process.pid, 'SIGKILL')
  }
})
out('idle')
