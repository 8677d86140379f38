import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const libPath = path.resolve(__dirname, '../../dist/lib/index.js');

/**
 * Runs an async script body in a fresh node process (so a crash fails the
 * test instead of killing the runner). `lib` is in scope as the library.
 * Returns the exit status, the signal and the JSON the script printed last.
 */
export function runChild(body: string, timeout = 60_000): { status: number | null; signal: string | null; out: unknown; stderr: string } {
  const script = `const lib = require(${JSON.stringify(libPath)});
    (async () => { ${body} })().then((r) => { console.log(JSON.stringify(r ?? null)); }, (e) => { console.error(e); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout });
  const lines = r.stdout.trim().split('\n');
  let out: unknown = null;
  try {
    out = JSON.parse(lines[lines.length - 1] ?? 'null');
  } catch {
    out = r.stdout;
  }
  return { status: r.status, signal: r.signal, out, stderr: r.stderr };
}
