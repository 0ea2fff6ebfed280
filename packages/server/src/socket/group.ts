import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { InvalidOptionError } from '@naaccord/ipc-shared'

/**
 * getent(1) from the C library's own tools, by absolute path: a PATH entry must not decide which
 * program answers a root server's group lookup.
 */
const GETENT = ['/usr/bin/getent', '/bin/getent', '/usr/sbin/getent'] as const

function parseGroupLine(line: string, name: string): number | undefined {
  const [entryName, , gid] = line.trim().split(':')
  return entryName === name && gid !== undefined && /^\d+$/.test(gid) ? Number(gid) : undefined
}

/**
 * Resolve a group given by name or gid. Node has no getgrnam(3), so a name is looked up with
 * `getent group NAME`, which asks the name service switch (nsswitch.conf(5)) like every other
 * program: /etc/group, LDAP, sssd, systemd-userdb. A numeric gid needs no lookup.
 *
 * @throws {InvalidOptionError} IPC_INVALID_OPTION naming the option and the group when it is unknown.
 * @example
 * resolveGroup('socketGroup', 'naaccord') // 998
 * resolveGroup('socketGroup', '998')      // 998
 */
export function resolveGroup(option: string, value: string | number): number {
  if (typeof value !== 'number' && typeof value !== 'string') throw new InvalidOptionError(option, `must be a group name or gid, got ${value === null ? 'null' : typeof value}`)
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const gid = Number(value)
    if (!Number.isInteger(gid) || gid < 0 || gid > 0xffffffff) throw new InvalidOptionError(option, `is not a valid gid: ${value}`)
    return gid
  }
  if (value.includes(':') || value.includes('\n') || value.startsWith('-')) {
    throw new InvalidOptionError(option, `is not a valid group name: ${JSON.stringify(value)}`)
  }
  const getent = GETENT.find((p) => existsSync(p))
  if (getent === undefined) {
    throw new InvalidOptionError(option, `cannot look up group "${value}": no getent(1) on this system (looked in ${GETENT.join(', ')}); give the numeric gid instead`)
  }
  let out: string
  try {
    out = execFileSync(getent, ['group', value], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })
  } catch (cause) {
    // getent(1): exit status 2 means the key was not found.
    if ((cause as { status?: number }).status === 2) {
      throw new InvalidOptionError(option, `no group named "${value}" (looked up with getent group, through nsswitch.conf); create it (groupadd ${value}) or give a numeric gid`)
    }
    throw new InvalidOptionError(option, `cannot look up group "${value}" with ${getent} group: ${(cause as Error).message}; give the numeric gid instead`, { cause })
  }
  for (const line of out.split('\n')) {
    const gid = parseGroupLine(line, value)
    if (gid !== undefined) return gid
  }
  throw new InvalidOptionError(option, `no group named "${value}" in the answer of getent group; give a numeric gid`)
}
