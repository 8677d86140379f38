import type { Subcommand } from './subcommand';

export const bench: Subcommand = {
  name: 'bench',
  summary: 'fio-style benchmark jobs (the same as blockring-bench)',
  async run(argv) {
    // Loaded on demand: the bench pulls in fio and node:fs contenders.
    const { runBenchCli } = await import('../../bench/cli');
    await runBenchCli(argv, 'blockring bench');
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  },
};
