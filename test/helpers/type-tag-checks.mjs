// Calls every native entry point (each wrapped class's prototype methods and
// accessors) on the wrong receiver: another kind of native handle, a plain
// object, and an object that only inherits the class's prototype. Plain JS
// so Bun and Deno run it too (test/native-type-tags.test.ts):
//   <runtime> type-tag-checks.mjs --dir DIR   prints one JSON line.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { native } = require('../../dist/lib/native.js');

const call = (fn) => {
  try {
    fn();
    return null;
  } catch (e) {
    return { name: e?.name, code: e?.code, message: e?.message };
  }
};

/** [{ entry, receiver, refusal }] for every entry point and wrong receiver; refusal null: it ran. */
export function wrongReceivers(dir) {
  const file = path.join(dir, 'type-tags.img');
  fs.writeFileSync(file, Buffer.alloc(1 << 20));
  const fd = fs.openSync(file, 'r+');
  const ring = new native.RingHandle({
    engine: 'threads', depth: 8, threads: 1, directSubmitBatch: 2, trace: false, completions: 'thread',
    pollMicros: 0, uringFeatures: undefined, cq: new Float64Array(4096 * 5), rawSq: new Float64Array(4096 * 8),
    rawCq: new Float64Array(4096 * 4), onComplete: () => {},
  });
  const region = new native.MappedRegion(fd, 0, 4096, false, false, false);
  const cow = new native.CowRegion(fd, 1 << 20, 65536, 4);
  const vhost = new native.VhostUserBlkHandle(fd, {
    socket: path.join(dir, 'type-tags.sock'), engine: 'threads', depth: 8, numQueues: 1, readOnly: false,
    size: 1 << 20, direct: false, blockSize: 512, offsetAlign: 512, memAlign: 512, isBlockDevice: false,
    serial: 'tags',
  });
  const log = new native.WriteLog();
  const handles = { RingHandle: ring, MappedRegion: region, CowRegion: cow, VhostUserBlkHandle: vhost, WriteLog: log };
  const out = [];
  try {
    for (const [kind, cls] of Object.entries({ RingHandle: native.RingHandle, MappedRegion: native.MappedRegion,
      CowRegion: native.CowRegion, VhostUserBlkHandle: native.VhostUserBlkHandle, WriteLog: native.WriteLog })) {
      const receivers = [
        ...Object.entries(handles).filter(([k]) => k !== kind),
        ['a plain object', {}],
        ['Object.create(prototype)', Object.create(cls.prototype)],
      ];
      for (const name of Object.getOwnPropertyNames(cls.prototype)) {
        if (name === 'constructor') continue;
        const d = Object.getOwnPropertyDescriptor(cls.prototype, name);
        const fns = [];
        if (typeof d.value === 'function') fns.push([name, d.value]);
        if (typeof d.get === 'function') fns.push([`get ${name}`, d.get]);
        for (const [entry, fn] of fns) {
          for (const [receiver, self] of receivers) {
            out.push({ entry: `${kind}.${entry}`, receiver, refusal: call(() => fn.call(self, 0, 0, 0, 0)) });
          }
        }
      }
    }
    // Each handle still works on its own kind afterwards.
    const sane = ring.inflight() === 0 && ring.engine === 'threads' && region.unmapped === false &&
      region.read(Buffer.alloc(16), 0) === 16 && cow.takeError() === 0 && vhost.stats().connected === false &&
      log.now() > 0;
    // MappedRegion's other constructor takes only a CowRegion mapping (a tagged External).
    const mapped = new native.MappedRegion(cow.newMapping(false), false);
    const mappingOk = mapped.unmapped === false;
    mapped.unmap();
    return { calls: out, sane, mappingOk };
  } finally {
    vhost.close();
    region.unmap();
    ring.close();
    fs.closeSync(fd);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[process.argv.indexOf('--dir') + 1];
  console.log(JSON.stringify(wrongReceivers(dir)));
}
