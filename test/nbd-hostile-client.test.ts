// Clients that lie, stop halfway or send garbage: the server answers with
// the protocol's error or hangs up, keeps serving others, leaks nothing per
// connection (buffers, requests, fds) and never acknowledges a write whose
// payload did not fully arrive.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BlockDevice, type NbdServer, Ring, serveNbd } from '../dist/lib/index.js';
import { WireClient } from './helpers/nbd-wire';
import { tempDir } from './helpers/tmp';

const SIZE = 4 << 20;
const EINVAL = 22;
const ENOSPC = 28;
const EPERM = 1;

let t: ReturnType<typeof tempDir>;
let ring: Ring;
let dev: BlockDevice;
let server: NbdServer;
let sock: string;
let image: string;

beforeAll(async () => {
  t = tempDir('blockring-nbd-hostile-');
  image = path.join(t.dir, 'disk.img');
  fs.writeFileSync(image, Buffer.alloc(SIZE));
  ring = new Ring({ depth: 64 });
  dev = await ring.open(image);
  sock = path.join(t.dir, 'nbd.sock');
  // With the ring: READ/WRITE up to 64 KiB take the raw path (ring.raw).
  server = await serveNbd(dev, { socket: sock, ring });
});
afterAll(async () => {
  await server.close();
  await dev.close();
  await ring.close();
  t.cleanup();
});

const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

async function idle(): Promise<void> {
  for (let i = 0; i < 200 && (server.stats.connections > 0 || server.stats.buffersOutstanding > 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(server.stats).toMatchObject({ connections: 0, inflight: 0, buffersOutstanding: 0 });
}

/** A well-behaved client still gets served: write then read back. */
async function healthy(): Promise<void> {
  const c = await WireClient.connect(sock);
  await c.handshake();
  const data = Buffer.alloc(4096, 0x6b);
  c.request(1, 8192, 4096, 1, 0, data);
  expect((await c.chunk())?.error).toBe(0);
  c.request(0, 8192, 4096, 2);
  const r = await c.chunk();
  expect(r?.type).toBe(1);
  expect(r?.data.subarray(8).equals(data)).toBe(true);
  c.request(2, 0, 0, 3); // NBD_CMD_DISC
  await c.closedByServer();
}

describe('hostile NBD clients', () => {
  it('garbage instead of client flags, a truncated handshake and a huge option length are hung up on', async () => {
    const fds = fdCount();
    const garbage = await WireClient.connect(sock);
    await garbage.read(18);
    garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await garbage.closedByServer();

    const truncated = await WireClient.connect(sock);
    await truncated.read(18);
    truncated.write(Buffer.from([0, 0, 0, 3, 0x49, 0x48, 0x41]));
    truncated.close();

    const huge = await WireClient.connect(sock);
    await huge.read(18);
    huge.write(Buffer.from([0, 0, 0, 3]));
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(0x49484156454f5054n, 0);
    h.writeUInt32BE(7, 8);
    h.writeUInt32BE(0xffffffff, 12);
    huge.write(h);
    await huge.closedByServer();

    const badMagic = await WireClient.connect(sock);
    await badMagic.handshake();
    badMagic.write(Buffer.alloc(28, 0xee));
    await badMagic.closedByServer();

    await idle();
    expect(fdCount()).toBe(fds);
    await healthy();
  });

  it('malformed options get errors and negotiation continues', async () => {
    const c = await WireClient.connect(sock);
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.option(0x1234);
    expect((await c.optionReply())?.type).toBe(0x80000001); // ERR_UNSUP
    const bad = Buffer.alloc(10);
    bad.writeUInt32BE(1000, 0); // name length past the option
    c.option(7, bad);
    expect((await c.optionReply())?.type).toBe(0x80000003); // ERR_INVALID
    const unknown = Buffer.alloc(9);
    unknown.writeUInt32BE(3, 0);
    unknown.write('foo', 4);
    c.option(6, unknown);
    expect((await c.optionReply())?.type).toBe(0x80000006); // ERR_UNKNOWN
    c.option(10, Buffer.alloc(8)); // SET_META_CONTEXT before structured replies
    expect((await c.optionReply())?.type).toBe(0x80000003);
    c.option(2); // ABORT
    expect((await c.optionReply())?.type).toBe(1);
    await c.closedByServer();
    await idle();
  });

  it('oversized and out-of-range requests get EINVAL/ENOSPC; the connection keeps working', async () => {
    const c = await WireClient.connect(sock);
    const { size } = await c.handshake();
    expect(size).toBe(SIZE);
    c.request(0, 0, 64 << 20, 10); // READ above the maximum payload
    expect(await c.chunk()).toMatchObject({ cookie: 10, error: EINVAL, type: 0x8001 });
    c.request(0, SIZE - 4096, 8192, 11); // READ past the end
    expect(await c.chunk()).toMatchObject({ cookie: 11, error: EINVAL });
    c.request(1, SIZE, 4096, 12, 0, Buffer.alloc(4096, 1)); // WRITE past the end
    expect(await c.chunk()).toMatchObject({ cookie: 12, error: ENOSPC });
    c.request(1, 0, 4096, 13, 0x40, Buffer.alloc(4096, 1)); // unknown flag
    expect(await c.chunk()).toMatchObject({ cookie: 13, error: EINVAL });
    c.request(0, 2 ** 60, 4096, 14); // offset past 2^53
    expect(await c.chunk()).toMatchObject({ cookie: 14, error: EINVAL });
    c.request(99, 0, 0, 15); // unknown command
    expect(await c.chunk()).toMatchObject({ cookie: 15, error: EINVAL });
    // A WRITE above the maximum payload: its 33 MiB are skipped (never buffered), then refused.
    const big = (32 << 20) + 4096;
    c.request(1, 0, big, 16);
    for (let sent = 0; sent < big; sent += 1 << 20) c.write(Buffer.alloc(Math.min(1 << 20, big - sent), 0xff));
    expect(await c.chunk()).toMatchObject({ cookie: 16, error: EINVAL });
    expect(server.stats.buffersOutstanding).toBe(0);
    c.request(0, 0, 4096, 17);
    const r = await c.chunk();
    expect(r).toMatchObject({ cookie: 17, type: 1, error: 0 });
    expect(r!.data.subarray(8).every((b) => b === 0)).toBe(true); // nothing of the refused writes landed
    c.close();
    await idle();
  });

  it('a disconnect mid-write never writes or acknowledges the partial payload', async () => {
    const fds = fdCount();
    const before = fs.readFileSync(image).subarray(1 << 20, 2 << 20);
    const c = await WireClient.connect(sock);
    await c.handshake(false);
    c.request(1, 1 << 20, 1 << 20, 20); // 1 MiB announced...
    c.write(Buffer.alloc(512 << 10, 0x5e)); // ...half of it sent
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await idle();
    expect(fs.readFileSync(image).subarray(1 << 20, 2 << 20).equals(before)).toBe(true);
    // The same for a write small enough for the raw path's slots.
    const c2 = await WireClient.connect(sock);
    await c2.handshake(false);
    c2.request(1, 1 << 20, 32 << 10, 21);
    c2.write(Buffer.alloc(16 << 10, 0x5e));
    await new Promise((r) => setTimeout(r, 50));
    c2.close();
    await idle();
    expect(fs.readFileSync(image).subarray(1 << 20, 2 << 20).equals(before)).toBe(true);
    expect(fdCount()).toBe(fds);
    await healthy();
  });

  it('options.ring: a ring whose raw queue is taken, or not the device\'s ring, is refused', async () => {
    await expect(serveNbd(dev, { socket: path.join(t.dir, 'taken.sock'), ring })).rejects.toThrow(/ring.raw is in use/);
    const other = new Ring();
    try {
      await expect(serveNbd(dev, { socket: path.join(t.dir, 'other.sock'), ring: other })).rejects.toThrow(/options.ring: .*opened on this ring/);
      expect(other.raw.onComplete).toBe(null);
    } finally {
      await other.close();
    }
  });

  it('the raw path: a device closed under the server fails requests with ESHUTDOWN', async () => {
    const r2 = new Ring();
    const d2 = await r2.open(image);
    const s2 = await serveNbd(d2, { socket: path.join(t.dir, 'closed.sock'), ring: r2 });
    try {
      const c = await WireClient.connect(path.join(t.dir, 'closed.sock'));
      await c.handshake();
      c.request(0, 0, 4096, 1);
      expect(await c.chunk()).toMatchObject({ cookie: 1, error: 0 });
      await d2.close();
      c.request(0, 0, 4096, 2);
      expect(await c.chunk()).toMatchObject({ cookie: 2, error: 108 });
      c.request(1, 0, 4096, 3, 0, Buffer.alloc(4096));
      expect(await c.chunk()).toMatchObject({ cookie: 3, error: 108 });
      c.close();
    } finally {
      await s2.close();
      await r2.close();
    }
  });

  it('a read-only export refuses writes with EPERM', async () => {
    const ro = await serveNbd(dev, { socket: path.join(t.dir, 'ro.sock'), readOnly: true });
    try {
      const c = await WireClient.connect(path.join(t.dir, 'ro.sock'));
      await c.handshake();
      c.request(1, 0, 4096, 1, 0, Buffer.alloc(4096));
      expect(await c.chunk()).toMatchObject({ error: EPERM });
      c.request(4, 0, 4096, 2);
      expect(await c.chunk()).toMatchObject({ error: EPERM });
      c.close();
    } finally {
      await ro.close();
    }
  });

  it('random malformed message streams never crash the server or leak (fast-check)', async () => {
    const fds = fdCount();
    const header = (type: number, flags: number, offset: bigint, length: number): Buffer => {
      const h = Buffer.alloc(28);
      h.writeUInt32BE(0x25609513, 0);
      h.writeUInt16BE(flags, 4);
      h.writeUInt16BE(type, 6);
      h.writeBigUInt64BE(offset, 16);
      h.writeUInt32BE(length, 24);
      return h;
    };
    const option = (opt: number, data: Uint8Array): Buffer => {
      const h = Buffer.alloc(16);
      h.writeBigUInt64BE(0x49484156454f5054n, 0);
      h.writeUInt32BE(opt, 8);
      h.writeUInt32BE(data.length, 12);
      return Buffer.concat([h, data]);
    };
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.record({ opt: fc.integer({ min: 0, max: 12 }), data: fc.uint8Array({ maxLength: 40 }) }).map((o) => option(o.opt, o.data)),
      fc.record({
        type: fc.integer({ min: 0, max: 9 }), flags: fc.integer({ min: 0, max: 0x3f }),
        offset: fc.bigInt({ min: 0n, max: BigInt(SIZE) + 8192n }), length: fc.integer({ min: 0, max: 70000 }),
      }).map((r) => header(r.type, r.flags, r.offset, r.length)),
    );
    await fc.assert(fc.asyncProperty(
      fc.boolean(), fc.array(piece, { maxLength: 12 }), fc.integer({ min: 1, max: 64 }),
      async (handshake, pieces, split) => {
        const c = await WireClient.connect(sock);
        if (handshake) await c.handshake(true).catch(() => undefined);
        else await c.read(18);
        const all = Buffer.concat(pieces);
        for (let i = 0; i < all.length; i += split) c.write(all.subarray(i, i + split));
        await new Promise((r) => setTimeout(r, 5));
        c.close();
      }), { numRuns: 60 });
    await idle();
    expect(fdCount()).toBe(fds);
    await healthy();
  });
});
