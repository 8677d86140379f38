// Running the real QEMU tools against images (qemu-utils is installed by
// .ci/run). Each returns the exit status and output rather than throwing,
// so tests can assert on what qemu-img said.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

export interface ToolResult {
  status: number;
  out: string;
}

/**
 * The environment for QEMU's tools: without the sanitizer run's LD_PRELOAD
 * (qemu-img under a preloaded ASan hangs in its coroutines).
 */
export function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  return env;
}

export function run(cmd: string, args: string[]): ToolResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: toolEnv() });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export const qemuImg = (...args: string[]): ToolResult => run('qemu-img', args);
export const qemuIo = (...args: string[]): ToolResult => run('qemu-io', args);

/** qemu-img check --output=json, parsed. */
export function check(image: string): { status: number; report: Record<string, unknown> } {
  const r = run('qemu-img', ['check', '-f', 'qcow2', '--output=json', image]);
  let report: Record<string, unknown> = {};
  try {
    report = JSON.parse(r.out.slice(r.out.indexOf('{'))) as Record<string, unknown>;
  } catch {
    report = { raw: r.out };
  }
  return { status: r.status, report };
}

/** qemu-img check finds no errors, corruptions or leaks in a qcow2 image. */
export function expectCheckClean(image: string): void {
  const c = check(image);
  expect(c.report).toMatchObject({ 'check-errors': 0 });
  expect(c.report.corruptions ?? 0).toBe(0);
  expect(c.report.leaks ?? 0).toBe(0);
  expect(c.status).toBe(0);
}

/** qemu-img compare: the qcow2 image reads exactly as the raw file. */
export function expectSameAsRaw(image: string, raw: string): void {
  const cmp = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', image, raw);
  expect(cmp.out).toContain('Images are identical');
  expect(cmp.status).toBe(0);
}
