import { defineConfig } from 'vitest/config';

import { base } from './vitest.config.mjs';

// Tests that flip system-wide settings (kernel.io_uring_disabled,
// fs.aio-max-nr) run alone, so no other test sees the window.
export default defineConfig({
  test: { ...base, include: ['test/**/*.serial.test.ts'], fileParallelism: false },
});
