// Runs our TypeScript sources the way `pnpm build` ships them: each file compiled by the
// TypeScript compiler (transpileModule, same target as tsconfig.base.json), nothing else.
// tsx, which `pnpm bench` starts with, compiles with esbuild's keepNames and wraps every inferred
// function name in a __name() call at run time (per call, for closures built per request), a cost
// the published packages do not have. Use: node --conditions=@naaccord/source --import ./bench/tsc-loader.mjs file.ts
import { register } from 'node:module'

if (!import.meta.url.endsWith('?hooks')) {
  register(new URL('./tsc-loader.mjs?hooks', import.meta.url))
}

let ts
async function compiler() {
  ts ??= (await import('typescript')).default
  return ts
}

/** Relative imports name the compiled file (`./serve.js`); from source, that is `./serve.ts`. */
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && /^\.{1,2}\/.*\.js$/.test(specifier)) {
      return next(specifier.replace(/\.js$/, '.ts'), context)
    }
    throw err
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.endsWith('.d.ts')) return next(url, context)
  const { readFile } = await import('node:fs/promises')
  const source = await readFile(new URL(url), 'utf8')
  const typescript = await compiler()
  const { outputText } = typescript.transpileModule(source, {
    fileName: new URL(url).pathname,
    compilerOptions: {
      target: typescript.ScriptTarget.ES2022,
      module: typescript.ModuleKind.ESNext,
      verbatimModuleSyntax: true,
      esModuleInterop: true,
      inlineSourceMap: true,
    },
  })
  return { format: 'module', source: outputText, shortCircuit: true }
}
