// Runs `blockring nbd` as a child process and hands back the URI it printed.
import { spawn } from 'node:child_process';
import path from 'node:path';

const CLI = path.join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');

export interface NbdChild {
  uri: string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  stderr(): string;
}

export function startNbd(args: string[]): Promise<NbdChild> {
  const child = spawn(process.execPath, [CLI, 'nbd', ...args]);
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        resolve({
          uri: out.slice(0, nl),
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
          stderr: () => err,
        });
      }
    });
    void exited.then((code) => reject(new Error(`blockring nbd exited ${code}: ${err}`)));
  });
}
