// blockring create IMAGE --format qcow2 [--size SIZE] [--backing PATH --backing-format FMT] [--cluster-size N]
import { createImage, type ImageFormat } from '../format/image';
import { parseCommand, type Subcommand } from './subcommand';

const HELP = `usage: blockring create IMAGE --format qcow2|raw [--size SIZE] [--backing PATH --backing-format FMT]
                        [--cluster-size BYTES] [--compat 0.10|1.1]

Creates IMAGE (never overwriting a file). SIZE takes K, M, G, T suffixes (powers of 1024);
without --size a qcow2 overlay takes its backing file's size. The backing format is stored
in the image (it is never probed), default raw.
`;

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

export function parseSize(s: string, what: string): number {
  const m = /^(\d+)([kmgtp]?)(i?b)?$/i.exec(s.trim());
  const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n)) throw usageError(`${what}: '${s}' is not a size (e.g. 512, 64K, 10G)`);
  return n;
}

function usageError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_USAGE' });
}

export const create: Subcommand = {
  name: 'create',
  summary: 'create a disk image (qcow2 overlay on a backing file, or raw)',
  async run(argv) {
    const parsed = parseCommand(argv, {
      format: { type: 'string', short: 'f' },
      size: { type: 'string', short: 's' },
      backing: { type: 'string', short: 'b' },
      'backing-format': { type: 'string', short: 'F' },
      'cluster-size': { type: 'string' },
      compat: { type: 'string' },
    }, HELP);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const [image, ...extra] = positionals;
    if (image === undefined || extra.length || values.format === undefined) {
      process.stderr.write(HELP);
      return 2;
    }
    const format = values.format as ImageFormat;
    const compat = values.compat;
    if (compat !== undefined && compat !== '0.10' && compat !== '1.1') throw usageError(`--compat must be 0.10 or 1.1`);
    await createImage(image, {
      format,
      ...(values.size !== undefined ? { size: parseSize(values.size, '--size') } : {}),
      ...(values.backing !== undefined ? { backing: values.backing } : {}),
      ...(values['backing-format'] !== undefined ? { backingFormat: values['backing-format'] as ImageFormat } : {}),
      ...(values['cluster-size'] !== undefined ? { clusterSize: parseSize(values['cluster-size'], '--cluster-size') } : {}),
      ...(compat !== undefined ? { version: compat === '0.10' ? 2 : 3 } : {}),
    });
    return 0;
  },
};
