// The acceptance test of the package as a user gets it: `npm pack` builds the
// tarball (with its prebuilds), a fresh project installs it with no
// compiler, make or python on PATH, every README example runs as written
// from the installed package, and a small I/O script runs under Bun and Deno.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { readmeExamples, runExample } from './helpers/readme-examples';
import { skipUnless, tempDir } from './helpers/tmp';

const ROOT = path.join(__dirname, '..');
const PREBUILDS = ['prebuilds/linux-x64/blockring.glibc.node', 'prebuilds/linux-arm64/blockring.glibc.node'];
let t: ReturnType<typeof tempDir>;
let tarball: string;
let project: string;
let bin: string;       // the only directory on PATH: node, npm, sh and qemu-img
let installed: string; // node_modules/blockring
let env: NodeJS.ProcessEnv;

function which(name: string): string {
  return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
}

beforeAll(() => {
  t = tempDir();
  // npm pack runs prepack: the TypeScript build and both prebuilds.
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', t.dir], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000,
  });
  const [pack] = JSON.parse(out.slice(out.indexOf('['))) as [{ filename: string }];
  tarball = path.join(t.dir, pack.filename);

  bin = path.join(t.dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(fs.realpathSync(which('npm')), path.join(bin, 'npm'));
  fs.symlinkSync(fs.realpathSync(which('sh')), path.join(bin, 'sh')); // npm runs scripts with sh
  // The NBD example in the README runs qemu-img as its client (a tool, not a compiler).
  fs.symlinkSync(fs.realpathSync(which('qemu-img')), path.join(bin, 'qemu-img'));
  env = { HOME: process.env.HOME, PATH: bin, npm_config_nodedir: '', npm_config_cache: process.env.npm_config_cache };
  for (const k of Object.keys(env)) if (env[k] === undefined || env[k] === '') delete env[k];

  project = path.join(t.dir, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  const r = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: project, env, encoding: 'utf8', timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`npm install failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  installed = path.join(project, 'node_modules', 'blockring');
}, 1_200_000);
afterAll(() => t.cleanup());

it('the tarball holds both prebuilds, tagged glibc, for the right machines', () => {
  const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').map((l) => l.replace(/^package\//, ''));
  for (const p of PREBUILDS) expect(list).toContain(p);
  expect(list).toContain('LICENSE');
  const machine = (p: string): number => fs.readFileSync(path.join(installed, p)).readUInt16LE(18); // ELF e_machine
  expect(machine(PREBUILDS[0]!)).toBe(62);  // EM_X86_64
  expect(machine(PREBUILDS[1]!)).toBe(183); // EM_AARCH64
});

it('the prebuilds need glibc 2.34 at most and no shared libstdc++', () => {
  for (const p of PREBUILDS) {
    const dyn = execFileSync('objdump', ['-T', '-p', path.join(installed, p)], { encoding: 'utf8' });
    const versions = [...dyn.matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1]));
    expect(Math.max(...versions), p).toBeLessThanOrEqual(34);
    expect(dyn).not.toMatch(/NEEDED\s+libstdc\+\+/);
  }
});

it('installing compiled nothing: no compiler, make or python was reachable, and no build/ exists', () => {
  expect(fs.readdirSync(bin).sort()).toEqual(['node', 'npm', 'qemu-img', 'sh']);
  for (const tool of ['g++', 'gcc', 'cc', 'c++', 'make', 'python3', 'python']) {
    expect(spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status, tool).not.toBe(0);
  }
  expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
});

it('a musl system does not load the glibc prebuild', () => {
  const probe = "try { require('node-gyp-build').resolve(process.argv[1]); console.log('loaded') } catch (e) { console.log('refused') }";
  const run = (libc: string): string => execFileSync(process.execPath, ['-e', probe, installed], {
    cwd: installed, env: { ...env, LIBC: libc }, encoding: 'utf8',
  }).trim();
  expect(run('glibc')).toBe('loaded');
  expect(run('musl')).toBe('refused');
});

it('every README example runs as written from the installed package', () => {
  const examples = readmeExamples(path.join(installed, 'README.md'));
  expect(examples.length).toBeGreaterThanOrEqual(7);
  for (const e of examples) {
    const r = runExample(project, e.code, env);
    expect(r.stderr, `README.md line ${e.line}`).toBe('');
    expect(r.status, `README.md line ${e.line}`).toBe(0);
    expect(r.leftovers).toEqual([]);
  }
});

function runtimeBinary(pkg: string, file: string): string | null {
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
  } catch {
    return null;
  }
}

const RUNTIMES = [
  { name: 'Bun', bin: runtimeBinary('@oven/bun-linux-x64', 'bin/bun'), args: [] as string[] },
  { name: 'Deno', bin: runtimeBinary('@deno/linux-x64-glibc', 'deno'), args: ['run', '-A'] },
];

for (const rt of RUNTIMES) {
  it.skipIf(skipUnless(rt.bin !== null && process.arch === 'x64', `${rt.name} binary (x64 npm package) not installed`))(
    `${rt.name} runs a small I/O script against the installed package`, () => {
      const script = path.join(project, 'io.mjs');
      fs.copyFileSync(path.join(__dirname, 'fixtures', 'package-io.mjs'), script);
      const out = execFileSync(rt.bin as string, [...rt.args, script], { cwd: project, env, encoding: 'utf8', timeout: 60_000 });
      expect(JSON.parse(out.trim().split('\n').pop() as string)).toEqual({ ok: true, engine: 'io_uring' });
    });
}
