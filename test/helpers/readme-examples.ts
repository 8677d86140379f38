import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The ```js blocks of a README, in order, with the line each starts on. */
export function readmeExamples(readme: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = fs.readFileSync(readme, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```js') continue;
    const start = i + 1;
    while (i + 1 < lines.length && lines[++i] !== '```');
    out.push({ line: start, code: lines.slice(start, i).join('\n') + '\n' });
  }
  return out;
}

/**
 * Runs one example as `node example.mjs` in `project` (where `blockring`
 * resolves), with TMPDIR pointing at an empty directory so anything the
 * example leaves behind is seen. Returns the process result and the leftovers.
 */
export function runExample(project: string, code: string, env: NodeJS.ProcessEnv = process.env) {
  const file = path.join(project, 'example.mjs');
  fs.writeFileSync(file, code);
  const tmp = fs.mkdtempSync(path.join(project, 'tmp-'));
  const r = spawnSync(process.execPath, [file], {
    cwd: project, encoding: 'utf8', timeout: 60_000, env: { ...env, TMPDIR: tmp },
  });
  const leftovers = fs.readdirSync(tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, leftovers };
}
