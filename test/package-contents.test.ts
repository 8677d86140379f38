// What `npm pack` ships: a LICENSE, a repository field, source maps whose
// sources are in the package, no typings for the benchmark, README links
// that resolve inside the tarball, and --help text free of project jargon.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');
let files: Set<string>;

beforeAll(() => {
  // --ignore-scripts: list what would ship without building prebuilds.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const [pack] = JSON.parse(out) as [{ files: { path: string }[] }];
  files = new Set(pack.files.map((f) => f.path));
}, 60_000);

it('ships a LICENSE and names its repository', () => {
  expect(files.has('LICENSE')).toBe(true);
  expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { license: string; repository?: { url?: string } };
  expect(pkg.license).toBe('MIT');
  expect(pkg.repository?.url).toMatch(/^git\+https:\/\//);
});

it('ships no typings for the benchmark, but the library\'s', () => {
  expect([...files].filter((f) => f.startsWith('dist/bench/') && f.endsWith('.d.ts'))).toEqual([]);
  expect(files.has('dist/lib/index.d.ts')).toBe(true);
  expect(files.has('dist/bench/cli.js')).toBe(true);
});

it('every source map points at sources the package ships', () => {
  const maps = [...files].filter((f) => f.endsWith('.js.map'));
  expect(maps.length).toBeGreaterThan(0);
  const missing: string[] = [];
  for (const m of maps) {
    const map = JSON.parse(fs.readFileSync(path.join(ROOT, m), 'utf8')) as { sources: string[] };
    for (const s of map.sources) {
      const p = path.posix.normalize(path.posix.join(path.posix.dirname(m), s));
      if (!files.has(p)) missing.push(`${m} -> ${p}`);
    }
  }
  expect(missing).toEqual([]);
});

it('every relative README link resolves inside the package', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^(https?:|#|mailto:)/.test(l));
  expect(links.length).toBeGreaterThan(0);
  const broken = links.filter((l) => !files.has(path.posix.normalize(l.split('#')[0]!)));
  expect(broken).toEqual([]);
});

it('--help says nothing of the project\'s internals', () => {
  const jargon = /\bissue[- ]?#?\d+|\bbar suite\b|\bTODO\b|\bhelper\b/i;
  for (const args of [['--help'], ['bench', '--help']]) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), ...args], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(50);
    expect(r.stdout).not.toMatch(jargon);
  }
});
