import { printable } from './printable.js'

/**
 * What the operator tools (`naaccord-ipc doctor`, `naaccord-ipc check-tls`) report: one finding
 * per thing looked at, and an exit code from the worst one.
 */

/** How bad a finding is; a command's exit code is the worst one (ok 0, warning 1, critical 2). */
export type Severity = 'ok' | 'warning' | 'critical'

/** One thing a check looked at: what it found and, unless ok, what to do. */
export interface Finding {
  readonly check: string
  readonly severity: Severity
  readonly message: string
  /** What to do about it (absent when ok). */
  readonly fix?: string
}

/** Severity as a number, which is also the command's exit code: ok 0, warning 1, critical 2. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = Object.freeze({ ok: 0, warning: 1, critical: 2 })

/**
 * The worst severity among findings ('ok' when there are none).
 *
 * @example
 * worstSeverity([{ check: 'mode', severity: 'warning', message: '0666' }]) // 'warning'
 */
export function worstSeverity(findings: readonly Finding[]): Severity {
  return findings.reduce<Severity>((w, f) => (SEVERITY_RANK[f.severity] > SEVERITY_RANK[w] ? f.severity : w), 'ok')
}

/**
 * The finding with its message and fix made printable: what a server or the filesystem supplied
 * (health warnings, certificate subjects, paths, error messages) may carry terminal control
 * sequences. Each tool passes its findings through this before handing them out.
 *
 * @example
 * printableFinding({ check: 'health', severity: 'warning', message: 'health degraded: \x1b[2J' }).message // 'health degraded: \\x1b[2J'
 */
export function printableFinding(f: Finding): Finding {
  return { ...f, message: printable(f.message), ...(f.fix === undefined ? {} : { fix: printable(f.fix) }) }
}
