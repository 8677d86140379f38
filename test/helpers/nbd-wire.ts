// A bare NBD client for tests that must send what real clients never do.
import net from 'node:net';

export const IHAVEOPT = 0x49484156454f5054n;
export const REQUEST_MAGIC = 0x25609513;

export class WireClient {
  readonly sock: net.Socket;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static connect(socket: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socket, () => resolve(new WireClient(s)));
      s.once('error', reject);
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** The next n bytes, or null if the server closed first. */
  async read(n: number): Promise<Buffer | null> {
    while (this.#buf.length < n) {
      if (this.closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Resolves when the server has closed the connection. */
  async closedByServer(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#waiters.push(r));
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  option(opt: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    this.write(Buffer.concat([h, data]));
  }

  /** One option reply: { opt, type, data }. */
  async optionReply(): Promise<{ opt: number; type: number; data: Buffer } | null> {
    const h = await this.read(20);
    if (!h) return null;
    const data = await this.read(h.readUInt32BE(16));
    if (!data) return null;
    return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data };
  }

  /** Greeting, client flags, structured replies, NBD_OPT_GO: ready for requests. */
  async handshake(structured = true): Promise<{ size: number }> {
    const greet = await this.read(18);
    if (!greet) throw new Error('no greeting');
    this.write(Buffer.from([0, 0, 0, 3])); // FIXED_NEWSTYLE | NO_ZEROES
    if (structured) {
      this.option(8);
      const r = await this.optionReply();
      if (r?.type !== 1) throw new Error('structured replies refused');
    }
    const go = Buffer.alloc(6);
    this.option(7, go);
    let size = -1;
    for (;;) {
      const r = await this.optionReply();
      if (!r) throw new Error('closed during GO');
      if (r.type === 3 && r.data.readUInt16BE(0) === 0) size = Number(r.data.readBigUInt64BE(2));
      if (r.type === 1) break;
      if (r.type >= 0x80000000) throw new Error(`GO refused: ${r.type}`);
    }
    return { size };
  }

  request(type: number, offset: number, length: number, cookie: number, flags = 0, payload?: Buffer): void {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(BigInt(cookie), 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    this.write(payload ? Buffer.concat([h, payload]) : h);
  }

  /** One structured reply chunk: { cookie, type, flags, data }; error chunks give `error`. */
  async chunk(): Promise<{ cookie: number; type: number; flags: number; data: Buffer; error: number } | null> {
    const h = await this.read(4);
    if (!h) return null;
    if (h.readUInt32BE(0) === 0x67446698) {
      const rest = await this.read(12);
      if (!rest) return null;
      return { cookie: Number(rest.readBigUInt64BE(4)), type: -1, flags: 1, data: Buffer.alloc(0), error: rest.readUInt32BE(0) };
    }
    const rest = await this.read(16);
    if (!rest) return null;
    const data = await this.read(rest.readUInt32BE(12));
    if (!data) return null;
    const type = rest.readUInt16BE(2);
    return {
      cookie: Number(rest.readBigUInt64BE(4)), type, flags: rest.readUInt16BE(0), data,
      error: type >= 0x8000 ? data.readUInt32BE(0) : 0,
    };
  }

  close(): void {
    this.sock.destroy();
  }
}
