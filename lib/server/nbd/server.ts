// The embedding API: serveNbd(device, options) exports any device
// ring.open() returns over NBD, on a unix socket or TCP.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import { allocAligned } from '../../aligned';
import { BlockDevice } from '../../block-device';
import { Qcow2Device } from '../../format/qcow2';
import { Ring } from '../../ring';
import { checkBool, checkOptions, rangeError, typeError } from '../../validate';
import { PayloadPool } from './buffers';
import { Connection, type ConnectionHost } from './connection';
import type { ExportInfo, TlsMode } from './handshake';
import * as P from './protocol';
import { RawPath } from './raw';
import type { NbdDevice } from './transmission';

export type { NbdDevice } from './transmission';

export interface NbdServerOptions {
  /** Listen on this unix socket (an existing socket file there is replaced). */
  socket?: string;
  /** Listen on TCP at host:port (port 0: any free port). */
  host?: string;
  port?: number;
  /** Export name (default ''; a client asking for '' always gets this export). */
  name?: string;
  /** Shown to clients that ask (NBD_INFO_DESCRIPTION). */
  description?: string;
  /** Offer the export read-only; implied by a read-only device. */
  readOnly?: boolean;
  /** TLS through NBD_OPT_STARTTLS (node:tls). Absent: no TLS (STARTTLS is refused). */
  tls?: NbdTlsOptions;
  /**
   * The ring `device` was opened on. With it (and a raw-file or block
   * device, not a qcow2 image) READ and WRITE of up to 64 KiB go through
   * `ring.raw`: records, one submission per socket read and one callback
   * per wakeup, no Promise per request. The server then owns `ring.raw`
   * (its `onComplete` and registered buffer table) until close(); a ring
   * whose `raw.onComplete` is already set is refused.
   */
  ring?: Ring;
}

export interface NbdTlsOptions {
  /** The server's certificate chain and private key (PEM), as tls.createSecureContext takes them. */
  cert: string | Buffer;
  key: string | Buffer;
  /** 'require' (default): every option but STARTTLS and ABORT is refused until TLS runs. 'on': plaintext clients are served too. */
  mode?: 'require' | 'on';
}

export interface NbdServerStats {
  /** Connections open now (or with requests still in flight). */
  connections: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Requests in flight on all connections. */
  inflight: number;
  /** Payload buffers not back in the pool (0 when idle). */
  buffersOutstanding: number;
}

/** A running NBD export. Stop it with close(); the device stays open. */
export class NbdServer {
  /** The NBD URI clients connect to (nbd+unix:///NAME?socket=PATH or nbd://HOST:PORT/NAME; nbds with TLS). */
  readonly uri: string;
  readonly socket: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly name: string;
  readonly readOnly: boolean;
  /** 'off', 'on' (TLS offered) or 'require'. */
  readonly tls: TlsMode;
  readonly #server: net.Server;
  readonly #host: ConnectionHost;
  readonly #connections = new Set<Connection>();
  readonly #gone = new Set<() => void>();
  #accepted = 0;
  #closing: Promise<void> | null = null;

  /** @internal */
  constructor(server: net.Server, host: ConnectionHost, where: { socket?: string; host?: string; port?: number }, readOnly: boolean) {
    this.#server = server;
    this.#host = host;
    this.socket = where.socket;
    this.host = where.host;
    this.port = where.port;
    this.name = host.exp.name;
    this.readOnly = readOnly;
    this.tls = host.tlsMode;
    const name = encodeURIComponent(this.name);
    const scheme = this.tls === 'off' ? 'nbd' : 'nbds';
    this.uri = where.socket !== undefined
      ? `${scheme}+unix:///${name}?socket=${where.socket}`
      : `${scheme}://${where.host?.includes(':') ? `[${where.host}]` : where.host}:${where.port}/${name}`;
  }

  get stats(): NbdServerStats {
    let inflight = 0;
    for (const c of this.#connections) inflight += c.inflight;
    return { connections: this.#connections.size, accepted: this.#accepted, inflight, buffersOutstanding: this.#host.pool.outstanding + (this.#host.raw?.outstanding ?? 0) };
  }

  /** @internal */
  _accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#accepted++;
    if (this.socket === undefined) socket.setNoDelay(true); // QEMU stalls against Nagle at depth
    this.#connections.add(new Connection(socket, this.#host));
  }

  /** @internal */
  _gone(c: Connection): void {
    this.#connections.delete(c);
    if (this.#connections.size === 0) for (const f of this.#gone) f();
  }

  /**
   * Stops accepting, lets every connection finish its in-flight requests
   * (no new ones are read), closes them, then flushes the device.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const listening = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      if (this.#connections.size > 0) {
        const idle = new Promise<void>((resolve) => this.#gone.add(resolve));
        for (const c of this.#connections) c.shutdown();
        await idle;
      }
      await listening;
      if (this.socket !== undefined) removeStaleSocket(this.socket);
      this.#host.raw?.release();
      const dev = this.#host.device;
      if (!dev.readOnly && !dev.closed) await dev.flush({ tag: 'ordered' });
    })();
    return this.#closing;
  }
}

const OPTION_KEYS = ['socket', 'host', 'port', 'name', 'description', 'readOnly', 'tls', 'ring'] as const;

// The raw path for `device` on `ring`, or null (a qcow2 image: the format
// layer resolves its requests). Checks first that the device is the ring's:
// a raw record names its device by handle, which only means this device on
// the ring that opened it.
async function rawPath(ring: unknown, device: NbdDevice): Promise<RawPath | null> {
  if (ring === undefined) return null;
  if (!(ring instanceof Ring)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.ring must be a Ring');
  if (ring.raw.onComplete !== null) throw typeError('ERR_INVALID_ARG_VALUE', 'options.ring: ring.raw is in use (its onComplete is set)');
  if (!(device instanceof BlockDevice)) return null;
  const n = Math.max(device.offsetAlignment, 512);
  try {
    await ring.submit([{ op: 'read', dev: device, buffer: allocAligned(n, device), offset: 0 }]);
  } catch (e) {
    throw typeError('ERR_INVALID_ARG_VALUE', `options.ring: ${(e as Error).message}`);
  }
  if (ring.raw.onComplete !== null) throw typeError('ERR_INVALID_ARG_VALUE', 'options.ring: ring.raw is in use (its onComplete is set)');
  return new RawPath(ring, device);
}

function checkTls(t: unknown): { mode: TlsMode; context: tls.SecureContext | null } {
  if (t === undefined) return { mode: 'off', context: null };
  const o = checkOptions(t, 'options.tls', ['cert', 'key', 'mode']);
  for (const k of ['cert', 'key'] as const) {
    const v = o[k];
    if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw typeError('ERR_INVALID_ARG_TYPE', `options.tls.${k} must be a PEM string or Buffer`);
  }
  const mode = o.mode ?? 'require';
  if (mode !== 'require' && mode !== 'on') throw typeError('ERR_INVALID_ARG_VALUE', `options.tls.mode must be 'require' or 'on', got '${String(mode)}'`);
  try {
    const pem = { cert: o.cert as string | Buffer, key: o.key as string | Buffer };
    return { mode, context: tls.createSecureContext({ ...pem, minVersion: 'TLSv1.2' }) };
  } catch (e) {
    throw typeError('ERR_INVALID_ARG_VALUE', `options.tls: ${(e as Error).message}`);
  }
}

/** Starts exporting `device` over NBD; resolves once the server listens. */
export async function serveNbd(device: NbdDevice, options: NbdServerOptions): Promise<NbdServer> {
  if (!(device instanceof BlockDevice) && !(device instanceof Qcow2Device)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'device must be a BlockDevice or a Qcow2Device');
  }
  const o = checkOptions(options, 'options', OPTION_KEYS);
  const name = o.name ?? '';
  if (typeof name !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'options.name must be a string');
  if (Buffer.byteLength(name) > P.MAX_STRING) throw rangeError('ERR_OUT_OF_RANGE', `options.name is longer than ${P.MAX_STRING} bytes`);
  const description = o.description ?? '';
  if (typeof description !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'options.description must be a string');
  const readOnly = checkBool(o.readOnly, 'options.readOnly') || device.readOnly;
  const t = checkTls(o.tls);
  const where: { socket?: string; host?: string; port?: number } = {};
  if (o.socket !== undefined) {
    if (typeof o.socket !== 'string' || o.socket.length === 0) throw typeError('ERR_INVALID_ARG_TYPE', 'options.socket must be a non-empty string');
    if (Buffer.byteLength(o.socket) > 107) throw rangeError('ERR_OUT_OF_RANGE', 'options.socket is longer than a unix socket path may be');
    if (o.host !== undefined || o.port !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', 'options.socket excludes options.host and options.port');
    where.socket = o.socket;
  } else {
    const host = o.host ?? '127.0.0.1';
    const port = o.port;
    if (typeof host !== 'string' || host.length === 0) throw typeError('ERR_INVALID_ARG_TYPE', 'options.host must be a non-empty string');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw rangeError('ERR_OUT_OF_RANGE', 'options.port must be an integer from 0 to 65535 (or give options.socket)');
    }
    where.host = host;
    where.port = port;
  }
  if (device.closed) throw typeError('ERR_INVALID_ARG_VALUE', 'device is closed');

  const minBlock = Math.max(device.offsetAlignment, device.isBlockDevice ? device.logicalBlockSize : 1);
  let flags = P.TF_HAS_FLAGS | P.TF_SEND_FLUSH | P.TF_SEND_FUA | P.TF_CAN_MULTI_CONN | P.TF_SEND_CACHE;
  flags |= readOnly ? P.TF_READ_ONLY : P.TF_SEND_TRIM | P.TF_SEND_WRITE_ZEROES | P.TF_SEND_FAST_ZERO;
  const exp: ExportInfo = {
    name,
    description,
    get size() {
      return device.size;
    },
    flags,
    minBlock,
    preferredBlock: Math.max(4096, minBlock),
    maxPayload: P.MAX_PAYLOAD,
  };
  const pool = new PayloadPool(device.memoryAlignment);
  const raw = await rawPath(o.ring, device);
  let nbd: NbdServer | null = null;
  const host: ConnectionHost = { exp, device, pool, raw, tlsMode: t.mode, tlsContext: t.context, gone: (c) => nbd?._gone(c) };
  const server = net.createServer({ pauseOnConnect: false }, (s) => nbd?._accept(s));
  if (where.socket !== undefined) removeStaleSocket(where.socket);
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error): void => {
      raw?.release();
      reject(e);
    };
    server.once('error', fail);
    const done = (): void => {
      server.off('error', fail);
      resolve();
    };
    if (where.socket !== undefined) server.listen(where.socket, done);
    else server.listen(where.port, where.host, done);
  });
  if (where.port !== undefined) where.port = (server.address() as net.AddressInfo).port;
  nbd = new NbdServer(server, host, where, readOnly);
  return nbd;
}

function removeStaleSocket(p: string): void {
  try {
    if (fs.lstatSync(p).isSocket()) fs.unlinkSync(p);
  } catch {
    // absent: nothing to remove
  }
}
