import { readFileSync } from 'node:fs'
import { InvalidOptionError } from '@naaccord/ipc-shared'

/**
 * Resolve a group given by name or gid. Node has no getgrnam(3), so names are looked up in
 * /etc/group (group(5)); a numeric gid needs no lookup.
 */
export function resolveGroup(option: string, value: string | number): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const gid = Number(value)
    if (!Number.isInteger(gid) || gid < 0 || gid > 0xffffffff) throw new InvalidOptionError(option, `is not a valid gid: ${value}`)
    return gid
  }
  let text: string
  try {
    text = readFileSync('/etc/group', 'utf8')
  } catch (cause) {
    throw new InvalidOptionError(option, `cannot look up group "${value}": /etc/group is not readable; give the numeric gid instead`, { cause })
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':')
    if (name === value && gid !== undefined && /^\d+$/.test(gid)) return Number(gid)
  }
  throw new InvalidOptionError(option, `no group named "${value}" in /etc/group; create it (groupadd ${value}) or give a numeric gid`)
}
