/** One `blockring` subcommand: `blockring <name> ...argv`. */
export interface Subcommand {
  readonly name: string;
  /** One line for `blockring --help`. */
  readonly summary: string;
  /** Runs with the arguments after the name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}
