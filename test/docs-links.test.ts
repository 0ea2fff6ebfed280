// Every relative link of the README, the pages under docs/, the changelog, the package READMEs and
// the READMEs of bench/ and deploy/
// leads somewhere: the file (or folder) exists, and a `#fragment` names a heading of the target
// page, slugged as GitHub does. Links to other sites are not followed.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

/** The markdown files a reader follows links in, relative to the root. */
function docFiles(): string[] {
  const under = (dir: string): string[] =>
    (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[]).filter((f) => f.endsWith('.md')).map((f) => path.join(dir, f))
  const packages = fs.readdirSync(path.join(ROOT, 'packages')).map((p) => path.join('packages', p, 'README.md'))
  return ['README.md', 'CHANGELOG.md', ...under('docs'), ...packages, 'bench/README.md', ...under('deploy')].filter((f) => fs.existsSync(path.join(ROOT, f)))
}

/** The text outside fenced code blocks, where a link is a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '')
}

/** GitHub's heading anchor: lower case, punctuation dropped (letters, digits, `-`, `_` kept), spaces to `-`. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-')
}

/** The anchors of a page: one per heading, a repeated one numbered `-1`, `-2` as GitHub does. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const m of prose(fs.readFileSync(file, 'utf8')).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** The relative links of one file: `[text](target)` and `![alt](target)`, without the external ones. */
function links(file: string): string[] {
  const text = prose(fs.readFileSync(path.join(ROOT, file), 'utf8'))
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t))
}

/** What is wrong with one link of `file`, or undefined. */
function broken(file: string, target: string): string | undefined {
  const [pathPart = '', fragment] = target.split('#')
  const resolved = pathPart === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), pathPart)
  if (!fs.existsSync(resolved)) return `${file}: ${target}: no such file`
  if (fragment === undefined) return undefined
  if (!resolved.endsWith('.md')) return `${file}: ${target}: a fragment on a file that is not a page`
  if (!anchors(resolved).has(fragment)) return `${file}: ${target}: no heading with that anchor`
  return undefined
}

describe('documentation links', () => {
  const files = docFiles()

  it('the README links to every page under docs/', () => {
    const pages = files.filter((f) => f.startsWith(`docs${path.sep}`))
    expect(pages.length).toBeGreaterThanOrEqual(9)
    const fromReadme = new Set(links('README.md').map((t) => path.join(t.split('#')[0]!)))
    expect(pages.filter((p) => !fromReadme.has(p))).toEqual([])
  })

  it.each(files)('%s: every relative link leads to an existing file and heading', (file) => {
    expect(links(file).map((t) => broken(file, t)).filter(Boolean)).toEqual([])
  })

  it('slugs headings as GitHub does', () => {
    expect(slug('Server: `serve(handler, options) → Promise<IpcServer>`')).toBe('server-servehandler-options--promiseipcserver')
    expect(slug('Socket activation: what `serve()` does with `LISTEN_FDS`')).toBe('socket-activation-what-serve-does-with-listen_fds')
    expect(slug('The chaos suite: `pnpm test:chaos`')).toBe('the-chaos-suite-pnpm-testchaos')
  })
})
