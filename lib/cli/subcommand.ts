import { parseArgs, type ParseArgsConfig } from 'node:util';

/** One `blockring` subcommand: `blockring <name> ...argv`. */
export interface Subcommand {
  readonly name: string;
  /** One line for `blockring --help`. */
  readonly summary: string;
  /** Runs with the arguments after the name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;
type CommandConfig<O extends ParseArgsOptionsConfig> = { args: string[]; allowPositionals: true; options: O & typeof HELP_OPTION };

/**
 * A subcommand's parseArgs: positionals allowed and `-h/--help` added. On
 * `--help` it prints `usage` to stdout and returns null (the command exits 0).
 */
export function parseCommand<const O extends ParseArgsOptionsConfig>(argv: string[], options: O, usage: string):
  ReturnType<typeof parseArgs<CommandConfig<O>>> | null {
  const parsed = parseArgs<CommandConfig<O>>({ args: argv, allowPositionals: true, options: { ...options, ...HELP_OPTION } });
  if (!(parsed.values as { help?: boolean }).help) return parsed;
  process.stdout.write(usage);
  return null;
}
