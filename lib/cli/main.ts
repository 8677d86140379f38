#!/usr/bin/env node
// blockring: one command, subcommands in lib/cli/<name>.ts. Each subcommand
// module exports a `Subcommand`; add it to SUBCOMMANDS below.
import { bench } from './bench';
import { create } from './create';
import { image } from './image';
import { nbd } from './nbd';
import type { Subcommand } from './subcommand';
import { vhostUserBlk } from './vhost-user-blk';

const SUBCOMMANDS: readonly Subcommand[] = [bench, create, image, nbd, vhostUserBlk];

function usage(): string {
  const width = Math.max(...SUBCOMMANDS.map((c) => c.name.length));
  const rows = SUBCOMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: blockring <command> [options]\n\ncommands:\n${rows.join('\n')}\n\n` +
    "Run 'blockring <command> --help' for a command's options.\n";
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`blockring: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const err = e as Error & { code?: string };
      process.stderr.write(`blockring: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
      process.exitCode = 1;
    },
  );
}
