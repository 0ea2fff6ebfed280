// Run by `node scripts/consumer-test.mjs --arch arm64` with the arm64 Node under qemu-user, in a
// project where npm installed the packed @naaccord/ipc-peercred: the addon's exports on arm64,
// each against the kernel. getPeerCredentials/getPeerIds on both ends of a Unix socket (uid, gid,
// pid, startTime, pidfd), inspectSocketFd on the listener, an exclusive flock taken and refused to
// a second open file, and an sd_notify datagram sent and received.
// Usage: node arm64-addon.mjs <private-dir>
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import { once } from 'node:events'
import path from 'node:path'
import {
  descriptorOf,
  getPeerCredentials,
  getPeerIds,
  inspectSocketFd,
  listenNotifySocket,
  loadNativeAddon,
  peerPidfdAvailable,
  sdNotify,
  tryLockExclusive,
} from '@naaccord/ipc-peercred'

const dir = process.argv[2]
const facts = { arch: process.arch, addon: loadNativeAddon().file ?? null }

// Peer credentials, both ends of one connection in this process.
const socketPath = path.join(dir, 'peer.sock')
const server = net.createServer()
server.listen(socketPath)
await once(server, 'listening')
const accepted = once(server, 'connection')
const client = net.connect(socketPath)
await once(client, 'connect')
const [conn] = await accepted
const self = { pid: process.pid, uid: process.getuid(), gid: process.getgid() }
const cred = getPeerCredentials(conn)
assert.deepEqual({ pid: cred.pid, uid: cred.uid, gid: cred.gid }, self)
assert.equal(typeof cred.startTime, 'number')
assert.deepEqual(getPeerIds(conn), self)
assert.deepEqual(getPeerIds(client), self)
facts.peer = { ...self, startTime: cred.startTime, pidfd: cred.pidfd ?? null, pidfdAvailable: peerPidfdAvailable() }

// inspectSocketFd on the listening socket.
const inspected = inspectSocketFd(descriptorOf(server))
assert.equal(inspected.family, 'unix')
assert.equal(inspected.type, 'stream')
assert.equal(inspected.listening, true)
assert.equal(inspected.path, socketPath)
if (inspected.file) assert.equal(inspected.file.ino, fs.statSync(socketPath).ino % 2 ** 32)
facts.inspectSocket = { family: inspected.family, type: inspected.type, listening: inspected.listening, file: inspected.file ? 'dev/ino match' : 'not reported' }
client.destroy()
conn.destroy()
server.close()

// flock: the first open file takes it, a second open file of the same path is refused.
const lockPath = path.join(dir, 'lock')
const flags = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW
const a = fs.openSync(lockPath, flags, 0o600)
const b = fs.openSync(lockPath, flags, 0o600)
assert.equal(tryLockExclusive(a), true)
assert.equal(tryLockExclusive(b), false)
fs.closeSync(a)
assert.equal(tryLockExclusive(b), true)
fs.closeSync(b)
facts.flock = 'taken, refused to a second open file, taken after close'

// sd_notify: a datagram to a listener bound here.
const notifyPath = path.join(dir, 'notify.sock')
const listener = listenNotifySocket(notifyPath)
try {
  assert.equal(sdNotify('READY=1\nSTATUS=arm64', notifyPath), true)
  let got = null
  for (let i = 0; i < 100 && got === null; i++) {
    got = listener.receive()
    if (got === null) await new Promise((r) => setTimeout(r, 10))
  }
  assert.equal(got, 'READY=1\nSTATUS=arm64')
  facts.sdNotify = 'sent and received'
} finally {
  listener.close()
}
console.log(JSON.stringify(facts))
