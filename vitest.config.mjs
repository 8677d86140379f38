import { defineConfig } from 'vitest/config';

// Prints a plain "N passed, N failed" line when a run ends, for CI logs.
const summary = {
  onTestRunEnd(testModules) {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') count.failed++;
        else count.skipped++;
      }
    }
    console.log(`\nvitest: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped`);
  },
};

// *.serial.test.ts files change system-wide settings (sysctls) and run on
// their own afterwards: see vitest.serial.config.mjs.
export const base = {
  // Native addon tests: child processes, with gc() exposed for the GC tests.
  pool: 'forks',
  execArgv: ['--expose-gc'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
  reporters: ['default', summary],
};

export default defineConfig({
  test: { ...base, include: ['test/**/*.test.ts'], exclude: ['test/**/*.serial.test.ts'] },
});
