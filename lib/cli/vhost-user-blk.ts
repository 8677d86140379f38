import { parseArgs } from 'node:util';

import { BlockringError } from '../errors';
import { Ring, type EngineName } from '../ring';
import { serveVhostUserBlk } from '../server/vhost-user-blk';
import type { Subcommand } from './subcommand';

const USAGE = `usage: blockring vhost-user-blk IMAGE --socket PATH [options]

Serves IMAGE to a VMM (QEMU: -chardev socket,path=PATH,id=c0
-device vhost-user-blk-pci,chardev=c0) until SIGINT or SIGTERM.

options:
  --socket PATH      unix socket to listen on (required)
  --format FORMAT    raw (default) or qcow2
  --read-only        offer the disk read-only
  --num-queues N     virtqueues (default 1)
  --engine NAME      auto, io_uring, libaio, threads, mmap, null (default auto)
  --direct           open a raw IMAGE with O_DIRECT (the guest's block size follows its alignment)
`;

export const vhostUserBlk: Subcommand = {
  name: 'vhost-user-blk',
  summary: 'serve an image to a VM over vhost-user-blk',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        format: { type: 'string', default: 'raw' },
        'read-only': { type: 'boolean', default: false },
        'num-queues': { type: 'string', default: '1' },
        engine: { type: 'string' },
        direct: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const image = positionals[0];
    if (positionals.length !== 1 || image === undefined || !values.socket) {
      process.stderr.write(USAGE);
      return 2;
    }
    if (values.format !== 'raw' && values.format !== 'qcow2') {
      throw new BlockringError('ERR_NOT_SUPPORTED', `format '${values.format}' is not supported (raw or qcow2)`);
    }
    const numQueues = Number(values['num-queues']);
    const ring = new Ring(values.engine ? { engine: values.engine as EngineName } : {});
    const dev = values.format === 'qcow2'
      ? await ring.open(image, { format: 'qcow2', readOnly: values['read-only'] })
      : await ring.open(image, { readOnly: values['read-only'], direct: values.direct });
    const server = serveVhostUserBlk(dev, {
      socket: values.socket, numQueues, readOnly: values['read-only'], engine: values.engine as EngineName | undefined,
    });
    process.stderr.write(`blockring: serving ${image} on ${values.socket} (${numQueues} queue(s), engine ${server.engine})\n`);
    // The server runs on its own thread; this timer keeps the event loop
    // (and so the process) alive until a signal arrives.
    const alive = setInterval(() => {}, 1 << 30);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(alive);
    await server.close();
    await dev.close();
    await ring.close();
    return 0;
  },
};
