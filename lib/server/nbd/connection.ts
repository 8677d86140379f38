// One client connection: reads the byte stream, frames it into handshake
// messages, options and requests, and hands each to the negotiation or the
// transmission. The only place that touches the socket's input.
import type { Socket } from 'node:net';
import tls from 'node:tls';

import { HEADROOM, type PayloadPool } from './buffers';
import { type ExportInfo, Negotiation, type TlsMode } from './handshake';
import { ByteQueue } from './input';
import { ReplyWriter } from './output';
import * as P from './protocol';
import type { RawPath } from './raw';
import { check, HEADER_SIZE, parseHeader, Request } from './request';
import { type NbdDevice, Transmission } from './transmission';

/** Requests (and payload bytes) in flight before the connection stops reading. */
const MAX_INFLIGHT = 512;
const MAX_INFLIGHT_BYTES = 128 << 20;
const SIZE_EVERY = 64;

const enum State {
  ClientFlags,
  OptionHeader,
  OptionData,
  RequestHeader,
  Payload, // a WRITE's data into its buffer
  SkipPayload, // a refused WRITE's data, discarded
  Disconnecting,
  Closed,
}

export interface ConnectionHost {
  readonly exp: ExportInfo;
  readonly device: NbdDevice;
  readonly pool: PayloadPool;
  /** READ/WRITE through ring.raw (null: every request takes the Promise path). */
  readonly raw: RawPath | null;
  readonly tlsMode: TlsMode;
  /** The server's certificate and key (null: tlsMode is 'off'). */
  readonly tlsContext: tls.SecureContext | null;
  /** The connection has closed and nothing of it is in flight. */
  gone(c: Connection): void;
}

export class Connection {
  #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #in = new ByteQueue();
  readonly #out: ReplyWriter;
  readonly #neg: Negotiation;
  #tx: Transmission | null = null;
  #state = State.ClientFlags;
  #option = 0;
  #need = 0; // bytes the current state waits for (option data, payload, skip)
  #filled = 0; // payload bytes received so far
  #current: Request | null = null; // the WRITE whose payload is arriving
  #refused = 0; // the error to reply with once a refused WRITE's payload is skipped
  readonly #free: Request[] = [];
  inflight = 0;
  #inflightBytes = 0;
  #paused = false;
  #reported = false;
  #sizeCached = 0;
  #sizeAge = 0;

  constructor(socket: Socket, host: ConnectionHost) {
    this.#socket = socket;
    this.#host = host;
    this.#out = new ReplyWriter(socket);
    this.#neg = new Negotiation(host.exp, this.#out, host.tlsMode);
    this.#listen(socket);
    this.#neg.greet();
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state >= State.Disconnecting) return;
    this.#in.push(chunk);
    this.#pump();
  };
  readonly #onDrain = (): void => this.#maybeResume();
  readonly #onError = (): void => undefined; // 'close' follows
  readonly #onClose = (): void => this.#closed();

  #listen(s: Socket): void {
    s.on('data', this.#onData);
    s.on('drain', this.#onDrain);
    s.on('error', this.#onError);
    s.on('close', this.#onClose);
  }

  // NBD_OPT_STARTTLS was acknowledged: from the next byte on, both ways
  // run through TLS on the same socket.
  #startTls(): void {
    // The client may send nothing between the ACK and its ClientHello:
    // anything already here is plaintext smuggled past the handshake.
    if (this.#in.length > 0) return this.#hangUp();
    this.#out.flushNow(); // the ACK, in plaintext
    const raw = this.#socket;
    raw.off('data', this.#onData);
    raw.off('drain', this.#onDrain);
    raw.off('close', this.#onClose);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#host.tlsContext! });
    this.#socket = secure;
    this.#out.socket = secure;
    this.#listen(secure);
    this.#neg.startedTls();
    this.#state = State.OptionHeader;
  }

  get transmitting(): boolean {
    return this.#tx !== null;
  }

  /** Server shutdown: no new requests; in-flight ones finish, then the socket ends. */
  shutdown(): void {
    if (this.#state >= State.Disconnecting) return;
    if (!this.#tx || this.#state !== State.RequestHeader) {
      // Mid-handshake or mid-payload: nothing acknowledged is lost by hanging up.
      this.#abandonPayload();
      this.#state = State.Disconnecting;
      this.#socket.destroy();
      return;
    }
    this.#disconnect();
  }

  #pump(): void {
    this.#frame();
    // Every raw record this batch of input produced goes in one submission;
    // what it completed at once is answered in this turn (#frame is done:
    // the completions may re-enter #pump through #maybeResume).
    const raw = this.#host.raw;
    if (raw?.submit()) raw.reap();
  }

  #frame(): void {
    const q = this.#in;
    while (!this.#paused) {
      switch (this.#state) {
        case State.ClientFlags: {
          if (q.length < 4) return;
          const b = q.view(4);
          const flags = b.readUInt32BE(q.viewOffset);
          q.skip(4);
          if (!this.#neg.clientFlags(flags)) return this.#hangUp();
          this.#state = State.OptionHeader;
          break;
        }
        case State.OptionHeader: {
          if (q.length < 16) return;
          const b = q.view(16);
          const at = q.viewOffset;
          if (b.readBigUInt64BE(at) !== P.IHAVEOPT) return this.#hangUp();
          this.#option = b.readUInt32BE(at + 8);
          this.#need = b.readUInt32BE(at + 12);
          q.skip(16);
          // A payload this large is an attack, not an option.
          if (this.#need > P.MAX_OPTION_LENGTH) return this.#hangUp();
          this.#state = State.OptionData;
          break;
        }
        case State.OptionData: {
          if (q.length < this.#need) return;
          const data = q.takeBuffer(this.#need);
          const outcome = this.#neg.option(this.#option, data);
          if (outcome === 'close') return this.#hangUp();
          if (outcome === 'starttls') return this.#startTls();
          if (outcome === 'transmission') {
            this.#tx = new Transmission(this.#host.device, this.#out, this.#host.pool, this.#host.raw, this.#neg.structured, (r) => this.#finished(r));
            this.#state = State.RequestHeader;
          } else this.#state = State.OptionHeader;
          break;
        }
        case State.RequestHeader: {
          if (q.length < HEADER_SIZE) return;
          if (this.inflight >= MAX_INFLIGHT || this.#inflightBytes >= MAX_INFLIGHT_BYTES || this.#out.backlogged) return this.#pause();
          const b = q.view(HEADER_SIZE);
          const r = this.#request();
          if (!parseHeader(b, q.viewOffset, r)) {
            this.#free.push(r);
            return this.#hangUp();
          }
          q.skip(HEADER_SIZE);
          this.#start(r);
          break;
        }
        case State.Payload: {
          const r = this.#current!;
          const n = Math.min(q.length, this.#need - this.#filled);
          if (n === 0) return;
          q.take(r.payload!.buf, HEADROOM + this.#filled, n);
          this.#filled += n;
          if (this.#filled < this.#need) return;
          // The whole payload is here: only now may the write run (and be acknowledged).
          this.#current = null;
          this.#state = State.RequestHeader;
          this.#tx!.run(r);
          break;
        }
        case State.SkipPayload: {
          const n = Math.min(q.length, this.#need);
          if (n === 0) return;
          q.skip(n);
          this.#need -= n;
          if (this.#need > 0) return;
          const r = this.#current!;
          this.#current = null;
          this.#state = State.RequestHeader;
          this.#tx!.reply(r, this.#refused);
          break;
        }
        default:
          return;
      }
    }
  }

  #request(): Request {
    const r = this.#free.pop();
    if (r) return r;
    const fresh = new Request();
    this.#tx!.bind(fresh);
    return fresh;
  }

  #start(r: Request): void {
    const tx = this.#tx!;
    if (r.type === P.CMD_DISC) {
      this.#free.push(r);
      return this.#disconnect();
    }
    let error = check(r, this.#host.exp, this.#size(false), this.#neg.structured, this.#neg.allocationContext);
    // Refused against the cached size: the device may have grown since.
    if (error !== 0) error = check(r, this.#host.exp, this.#size(true), this.#neg.structured, this.#neg.allocationContext);
    this.inflight++;
    if (r.type === P.CMD_WRITE) {
      this.#current = r;
      this.#need = r.length;
      if (error !== 0) {
        // The payload follows regardless: consume it (never buffering it) and refuse.
        this.#refused = error;
        this.#state = State.SkipPayload;
        return;
      }
      r.payload = this.#host.raw?.get(r.length) ?? this.#host.pool.get(r.length);
      r.counted = r.length;
      this.#inflightBytes += r.length;
      this.#filled = 0;
      this.#state = State.Payload;
      return;
    }
    if (error !== 0) return tx.reply(r, error);
    if (r.type === P.CMD_READ) {
      r.counted = r.length;
      this.#inflightBytes += r.length;
    }
    tx.run(r);
  }

  // The device's size (a native call) is read again every SIZE_EVERY
  // requests, or when `fresh`: a file truncated under the export is noticed
  // within that many requests (reads past its end return zeros meanwhile).
  #size(fresh: boolean): number {
    if (fresh || --this.#sizeAge <= 0) {
      this.#sizeCached = this.#host.device.size;
      this.#sizeAge = SIZE_EVERY;
    }
    return this.#sizeCached;
  }

  #finished(r: Request): void {
    this.inflight--;
    this.#inflightBytes -= r.counted;
    r.counted = 0;
    this.#free.push(r);
    if (this.#state === State.Disconnecting && this.inflight === 0) this.#endSocket();
    else if (this.#state === State.Closed) this.#report();
    else this.#maybeResume();
  }

  #pause(): void {
    this.#paused = true;
    this.#socket.pause();
  }

  #maybeResume(): void {
    if (!this.#paused || this.#out.backlogged) return;
    if (this.inflight >= MAX_INFLIGHT / 2 || this.#inflightBytes >= MAX_INFLIGHT_BYTES / 2) return;
    this.#paused = false;
    this.#socket.resume();
    this.#pump();
  }

  // NBD_CMD_DISC (or shutdown): finish what is in flight, then close.
  #disconnect(): void {
    this.#state = State.Disconnecting;
    this.#in.clear();
    this.#socket.pause();
    if (this.inflight === 0) this.#endSocket();
  }

  #endSocket(): void {
    this.#out.flushNow();
    this.#out.close();
    this.#socket.end();
  }

  #hangUp(): void {
    this.#state = State.Disconnecting;
    this.#in.clear();
    this.#out.flushNow();
    this.#out.close();
    this.#socket.end();
    this.#socket.destroySoon();
  }

  #abandonPayload(): void {
    const r = this.#current;
    if (!r) return;
    // A WRITE whose payload never fully arrived: never run, never acknowledged.
    this.#current = null;
    if (this.#tx) this.#tx.dead = true;
    this.#tx?.reply(r, P.EIO);
  }

  #closed(): void {
    this.#abandonPayload();
    this.#state = State.Closed;
    this.#in.clear();
    this.#out.close();
    if (this.#tx) this.#tx.dead = true;
    this.#report();
  }

  #report(): void {
    if (this.inflight > 0 || this.#reported) return;
    this.#reported = true;
    this.#host.gone(this);
  }
}
