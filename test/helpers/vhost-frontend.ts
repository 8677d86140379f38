// Drives test/helpers/vhost-frontend.c: compiles it once per process and
// talks to it one command line at a time (see the commands in the .c file).
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SRC = path.join(__dirname, 'vhost-frontend.c');
let built: string | null = null;

/** Path of the compiled frontend (built with gcc on first use). */
export function frontendBinary(): string {
  if (built) return built;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-vf-')), 'vhost-frontend');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, SRC]);
  built = out;
  return out;
}

export class Frontend {
  readonly child: ChildProcessWithoutNullStreams;
  #buf = '';
  #waiters: ((line: string | null) => void)[] = [];
  #lines: string[] = [];
  #closed = false;
  readonly exited: Promise<number | null>;

  constructor(socket: string, args: string[] = []) {
    const env = { ...process.env };
    delete env.LD_PRELOAD;  // the sanitizer run's; the frontend is not what it checks
    this.child = spawn(frontendBinary(), [socket, ...args], { env });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => {
      this.#buf += d;
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        this.#closed = true;
        for (const w of this.#waiters.splice(0)) w(null);
        resolve(code);
      });
    });
  }

  /** Sends one command; resolves to its result line (null if the frontend exited). */
  cmd(line: string): Promise<string | null> {
    if (this.#closed) return Promise.resolve(null);
    const p = new Promise<string | null>((resolve) => {
      const l = this.#lines.shift();
      if (l !== undefined) resolve(l);
      else this.#waiters.push(resolve);
    });
    this.child.stdin.write(line + '\n');
    return p;
  }

  /** Ends the frontend (killed if it does not exit within a second). */
  async quit(): Promise<void> {
    if (!this.#closed) this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Runs fn with a frontend that is always ended afterwards (the server serves one at a time). */
export async function withFrontend<T>(socket: string, args: string[], fn: (f: Frontend) => Promise<T>): Promise<T> {
  const f = new Frontend(socket, args);
  try {
    return await fn(f);
  } finally {
    await f.quit();
  }
}

/** Expected image bytes of the frontend's pattern at byte offset off (a multiple of 8). */
export function pattern(off: number, bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  const mul = (BigInt(seed) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  for (let i = 0; i < bytes; i += 8) out.writeBigUInt64LE(mul ^ BigInt(off + i), i);
  return out;
}
