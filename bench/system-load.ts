import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let tickUs: number | undefined

function microsPerTick(): number {
  if (tickUs === undefined) {
    let hz = 100
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      // proc(5): USER_HZ is 100 on nearly every Linux
    }
    tickUs = 1e6 / hz
  }
  return tickUs
}

/** CPU time the whole machine spent busy (user, nice, system) and stolen by the hypervisor, µs; undefined off Linux. */
export function machineCpu(): { busyUs: number; stealUs: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    // proc(5): cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const t = microsPerTick()
    return { busyUs: (f[0]! + f[1]! + f[2]!) * t, stealUs: (f[7] ?? 0) * t }
  } catch {
    return undefined
  }
}
