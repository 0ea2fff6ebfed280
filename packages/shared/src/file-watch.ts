import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs'
import path from 'node:path'

export interface FileWatch {
  close(): void
}

/**
 * Call `onChange` (debounced) when any of `files` changes. Watches each file's folder rather
 * than the file, because rotation replaces files by rename(2) and an inode watch would go on
 * watching the old file; a slow stat poll backs it up on filesystems without inotify.
 *
 * @example
 * const w = watchFiles(['/etc/naaccord/certs/services.crt'], () => reload(), 200)
 */
export function watchFiles(files: readonly string[], onChange: () => void, debounceMs = 250): FileWatch {
  let timer: NodeJS.Timeout | undefined
  const fire = () => {
    clearTimeout(timer)
    timer = setTimeout(onChange, debounceMs)
    timer.unref()
  }
  const names = new Set(files.map((f) => path.resolve(f)))
  const watchers: FSWatcher[] = []
  for (const dir of new Set([...names].map((f) => path.dirname(f)))) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(path.join(dir, name.toString()))) fire()
      })
      w.on('error', () => {})
      watchers.push(w)
    } catch {
      // The poll below still covers this folder.
    }
  }
  for (const f of names) watchFile(f, { persistent: false, interval: 2000 }, fire)
  return {
    close() {
      clearTimeout(timer)
      for (const w of watchers) w.close()
      for (const f of names) unwatchFile(f, fire)
    },
  }
}
