
import type { EngineName } from '../ring';
import { serveVhostUserBlk } from '../server/vhost-user-blk';
import { openServedImage, serveUntilSignal, servingOptions } from './serve';
import { parseCommand, type Subcommand } from './subcommand';

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
    const parsed = parseCommand(argv, {
      ...servingOptions,
      'num-queues': { type: 'string', default: '1' },
      direct: { type: 'boolean', default: false },
    }, USAGE);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const image = positionals[0];
    if (positionals.length !== 1 || image === undefined || !values.socket) {
      process.stderr.write(USAGE);
      return 2;
    }
    const numQueues = Number(values['num-queues']);
    // --direct applies to raw images (the option's help says so).
    const served = await openServedImage(image, {
      format: values.format, engine: values.engine, readOnly: values['read-only'], direct: values.format === 'raw' && values.direct,
    });
    const server = serveVhostUserBlk(served.dev, {
      socket: values.socket, numQueues, readOnly: values['read-only'], engine: values.engine as EngineName | undefined,
    });
    process.stderr.write(`blockring: serving ${image} on ${values.socket} (${numQueues} queue(s), engine ${server.engine})\n`);
    return serveUntilSignal(served, server);
  },
};
