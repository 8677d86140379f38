// What the serving subcommands (nbd, vhost-user-blk) share: opening IMAGE
// in the format named on the command line, and serving until a signal.
import { BlockringError } from '../errors';
import type { BlockDevice } from '../block-device';
import type { Qcow2Device } from '../format/qcow2';
import { Ring, type EngineName } from '../ring';

/** The parseArgs options every serving subcommand (nbd, vhost-user-blk) takes. */
export const servingOptions = {
  socket: { type: 'string' },
  format: { type: 'string', default: 'raw' },
  'read-only': { type: 'boolean', default: false },
  engine: { type: 'string' },
} as const;

export interface ServedImage {
  ring: Ring;
  dev: BlockDevice | Qcow2Device;
}

/** Opens IMAGE as `--format` says (never probed) on a ring of `--engine`. */
export async function openServedImage(image: string, o: { format: string; engine?: string; readOnly: boolean; direct: boolean }): Promise<ServedImage> {
  if (o.format !== 'raw' && o.format !== 'qcow2') {
    throw new BlockringError('ERR_NOT_SUPPORTED', `format '${o.format}' is not supported (raw or qcow2)`);
  }
  const ring = new Ring(o.engine ? { engine: o.engine as EngineName } : {});
  try {
    const dev = o.format === 'qcow2'
      ? await ring.open(image, { format: 'qcow2', readOnly: o.readOnly, direct: o.direct })
      : await ring.open(image, { readOnly: o.readOnly, direct: o.direct });
    return { ring, dev };
  } catch (e) {
    await ring.close();
    throw e;
  }
}

/**
 * Waits for SIGINT or SIGTERM, then closes the server (which finishes its
 * requests in flight), the device (flushing what it caches) and the ring.
 */
export async function serveUntilSignal(served: ServedImage, server: { close(): Promise<void> }): Promise<number> {
  // A server on its own thread holds no event-loop handle: this timer keeps
  // the process alive until the signal.
  const alive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(alive);
  await server.close();
  await served.dev.close();
  await served.ring.close();
  return 0;
}
