// Builds one bundle for test/source-bundle.ts (run as a child: esbuild plugins need the async
// build, and the tests that spawn fixtures do so synchronously).
// Usage: node test/source-bundle-build.mjs <entry.ts> <out.mjs> <meta.json>
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const [entry, outfile, metaFile] = process.argv.slice(2)

/** Every module but the entry keeps its own import.meta.url (the addon's package root, siblings). */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      if (args.path === path.resolve(entry) || args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined
      const text = await readFile(args.path, 'utf8')
      if (!text.includes('import.meta.url')) return undefined
      const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js'
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader }
    })
  },
}

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['@naaccord/source'],
  absWorkingDir: process.cwd(),
  logLevel: 'error',
  metafile: true,
  plugins: [ownUrls],
  // Bundled CommonJS (pino, node-gyp-build) calls require() for Node's own modules.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
})
await writeFile(metaFile, JSON.stringify({ inputs: result.metafile.inputs }))
