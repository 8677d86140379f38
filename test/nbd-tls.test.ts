// NBD over TLS (NBD_OPT_STARTTLS, node:tls) judged by real clients: qemu-io
// and qemu-img with a tls-creds-x509 object, nbdinfo and nbdcopy with
// nbds:// (libnbd's GnuTLS). Certificates are made here with openssl. Then
// clients that break the rules: plaintext options where TLS is required,
// bytes smuggled behind STARTTLS, plaintext after the ACK.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BlockDevice, type NbdServer, Ring, serveNbd } from '../dist/lib/index.js';
import { startNbd } from './helpers/nbd-cli';
import { IHAVEOPT, WireClient } from './helpers/nbd-wire';
import { qemuImg, qemuIo, run, toolEnv } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

const MiB = 1 << 20;
const OPT_EXPORT_NAME = 1;
const OPT_STARTTLS = 5;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_ERR_INVALID = 0x80000003;
const REP_ERR_TLS_REQD = 0x80000005;

const t = tempDir('blockring-nbd-tls-');
const creds = path.join(t.dir, 'server');
const clientCreds = path.join(t.dir, 'client'); // the CA only: qemu's and libnbd's client directory
const otherCa = path.join(t.dir, 'other'); // a CA that did not sign the server's certificate

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

function makeCa(dir: string, name: string): void {
  fs.mkdirSync(dir, { recursive: true });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca-key.pem'), '-out', path.join(dir, 'ca-cert.pem'),
    '-days', '2', '-subj', `/CN=${name}`);
}

beforeAll(() => {
  makeCa(creds, 'blockring test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(creds, 'server-key.pem'), '-out', path.join(creds, 'server.csr'),
    '-subj', '/CN=localhost');
  const ext = path.join(creds, 'ext.cnf');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', path.join(creds, 'server.csr'), '-CA', path.join(creds, 'ca-cert.pem'), '-CAkey', path.join(creds, 'ca-key.pem'),
    '-CAcreateserial', '-out', path.join(creds, 'server-cert.pem'), '-days', '2', '-extfile', ext);
  fs.mkdirSync(clientCreds);
  fs.copyFileSync(path.join(creds, 'ca-cert.pem'), path.join(clientCreds, 'ca-cert.pem'));
  makeCa(otherCa, 'some other CA');
});
afterAll(() => t.cleanup());

const tlsObject = (dir: string): string => `tls-creds-x509,id=tls0,dir=${dir},endpoint=client`;
const port = (uri: string): string => /:(\d+)\//.exec(uri)![1]!;
const sha = (p: string): string => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

describe('blockring nbd --tls-creds over TCP', () => {
  it('qemu-io, qemu-img, nbdinfo and nbdcopy --connections=4 work through TLS; plaintext and an untrusted CA are refused', async () => {
    const image = path.join(t.dir, 'tls.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * MiB);
    const nbd = await startNbd([image, '--listen', '127.0.0.1:0', '--tls-creds', creds, '--name', 'disk0']);
    try {
      expect(nbd.uri).toMatch(/^nbds:\/\/127\.0\.0\.1:\d+\/disk0$/);
      const opts = `driver=nbd,host=127.0.0.1,port=${port(nbd.uri)},export=disk0,tls-creds=tls0`;
      const io = qemuIo('--object', tlsObject(clientCreds), '--image-opts', opts,
        '-c', 'write -P 0x3c 0 1M', '-c', 'write -z 1M 1M', '-c', 'flush', '-c', 'read -P 0x3c 0 1M', '-c', 'read -P 0 1M 1M');
      expect(io.status, io.out).toBe(0);
      expect(io.out).not.toMatch(/Pattern verification failed|error|failed/i);

      const info = JSON.parse(execFileSync('nbdinfo', ['--json', `${nbd.uri}?tls-certificates=${clientCreds}`], { encoding: 'utf8', env: toolEnv() })) as {
        TLS: boolean; exports: Record<string, unknown>[];
      };
      expect(info.TLS).toBe(true);
      expect(info.exports[0]!['export-size']).toBe(16 * MiB);

      // nbdcopy both ways over four TLS connections, byte-identical.
      const src = path.join(t.dir, 'src.img');
      fs.writeFileSync(src, crypto.randomBytes(8 * MiB));
      const tlsUri = `${nbd.uri}?tls-certificates=${clientCreds}`;
      let r = run('nbdcopy', ['--connections=4', src, tlsUri]);
      expect(r.status, r.out).toBe(0);
      const back = path.join(t.dir, 'back.img');
      r = run('nbdcopy', ['--connections=4', tlsUri, back]);
      expect(r.status, r.out).toBe(0);
      expect(sha(back)).toBe(sha(image));
      expect(Buffer.compare(fs.readFileSync(back).subarray(0, 8 * MiB), fs.readFileSync(src))).toBe(0);

      const conv = path.join(t.dir, 'conv.img');
      r = qemuImg('convert', '--object', tlsObject(clientCreds), '--image-opts', opts, '-O', 'raw', conv);
      expect(r.status, r.out).toBe(0);
      expect(sha(conv)).toBe(sha(image));

      // A plaintext client is refused with NBD_REP_ERR_TLS_REQD; a client
      // that trusts another CA refuses the server's certificate.
      const plain = qemuIo('-f', 'raw', `nbd://127.0.0.1:${port(nbd.uri)}/disk0`, '-c', 'read 0 4k');
      expect(plain.status).not.toBe(0);
      expect(plain.out).toMatch(/TLS negotiation required/);
      const untrusted = qemuIo('--object', tlsObject(otherCa), '--image-opts', opts, '-c', 'read 0 4k');
      expect(untrusted.status).not.toBe(0);
      // Still serving after both (nbdcopy left src's bytes at 0).
      const again = qemuIo('--object', tlsObject(clientCreds), '--image-opts', opts, '-c', `read -P 0x${fs.readFileSync(src).subarray(0, 1).toString('hex')} 0 1`);
      expect(again.status, again.out).toBe(0);
      expect(again.out).not.toMatch(/Pattern verification failed/);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
  });

  it('--tls on also serves plaintext clients; --tls without credentials is a usage error', async () => {
    const image = path.join(t.dir, 'on.img');
    fs.writeFileSync(image, Buffer.alloc(MiB, 0x21));
    const nbd = await startNbd([image, '--listen', '127.0.0.1:0', '--tls-cert', path.join(creds, 'server-cert.pem'),
      '--tls-key', path.join(creds, 'server-key.pem'), '--tls', 'on']);
    try {
      const p = port(nbd.uri);
      expect(qemuIo('-f', 'raw', `nbd://127.0.0.1:${p}/`, '-c', 'read -P 0x21 0 64k').status).toBe(0);
      expect(qemuIo('--object', tlsObject(clientCreds), '--image-opts', `driver=nbd,host=127.0.0.1,port=${p},tls-creds=tls0`,
        '-c', 'read -P 0x21 0 64k').status).toBe(0);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
    await expect(startNbd([image, '--listen', '127.0.0.1:0', '--tls', 'require'])).rejects.toThrow(/needs --tls-creds/);
  });
});

describe('TLS rules against clients that break them', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let server: NbdServer;
  let sock: string;

  beforeAll(async () => {
    const image = path.join(t.dir, 'wire.img');
    fs.writeFileSync(image, Buffer.alloc(MiB, 0x44));
    ring = new Ring();
    dev = await ring.open(image);
    sock = path.join(t.dir, 'tls.sock');
    server = await serveNbd(dev, {
      socket: sock,
      tls: { cert: fs.readFileSync(path.join(creds, 'server-cert.pem')), key: fs.readFileSync(path.join(creds, 'server-key.pem')) },
    });
  });
  afterAll(async () => {
    await server.close();
    await dev.close();
    await ring.close();
  });

  async function idle(): Promise<void> {
    for (let i = 0; i < 200 && server.stats.connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.stats).toMatchObject({ connections: 0, inflight: 0, buffersOutstanding: 0 });
  }

  async function greeted(): Promise<WireClient> {
    const c = await WireClient.connect(sock);
    expect(await c.read(18)).not.toBeNull();
    c.write(Buffer.from([0, 0, 0, 3]));
    return c;
  }

  function optionBytes(opt: number, data = Buffer.alloc(0)): Buffer {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    return Buffer.concat([h, data]);
  }

  /** STARTTLS, then a TLS session on the same socket and NBD_OPT_GO inside it: the export's first bytes. */
  async function secureRead(c: WireClient): Promise<Buffer> {
    c.option(OPT_STARTTLS);
    expect((await c.optionReply())?.type).toBe(REP_ACK);
    c.sock.removeAllListeners('data');
    const s = tls.connect({ socket: c.sock, ca: fs.readFileSync(path.join(creds, 'ca-cert.pem')), servername: 'localhost' });
    await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
    let got = Buffer.alloc(0);
    const need = async (n: number): Promise<Buffer> => {
      while (got.length < n) await new Promise<void>((r) => s.once('data', (d: Buffer) => ((got = Buffer.concat([got, d])), r())));
      const out = got.subarray(0, n);
      got = got.subarray(n);
      return out;
    };
    s.write(optionBytes(OPT_GO, Buffer.alloc(6)));
    for (;;) {
      const h = await need(20);
      await need(h.readUInt32BE(16));
      if (h.readUInt32BE(12) === REP_ACK) break;
    }
    const req = Buffer.alloc(28);
    req.writeUInt32BE(0x25609513, 0);
    req.writeBigUInt64BE(7n, 8);
    req.writeUInt32BE(4096, 24);
    s.write(req);
    const reply = await need(16 + 4096); // simple reply: no structured replies negotiated
    s.end();
    s.destroy();
    return reply;
  }

  it('refuses options before STARTTLS, hangs up on EXPORT_NAME, then serves the same client through TLS', async () => {
    const c = await greeted();
    c.option(OPT_GO, Buffer.alloc(6));
    expect((await c.optionReply())?.type).toBe(REP_ERR_TLS_REQD);
    c.option(OPT_STARTTLS, Buffer.from('x'));
    expect((await c.optionReply())?.type).toBe(REP_ERR_INVALID);
    const reply = await secureRead(c);
    expect(reply.readUInt32BE(4)).toBe(0);
    expect(reply.readBigUInt64BE(8)).toBe(7n);
    expect(reply.subarray(16).equals(Buffer.alloc(4096, 0x44))).toBe(true);

    const e = await greeted();
    e.option(OPT_EXPORT_NAME, Buffer.alloc(0));
    await e.closedByServer();
    await idle();
  });

  it('bytes sent behind STARTTLS before its ACK, and plaintext after the ACK, end the connection; the server serves on', async () => {
    const early = await greeted();
    // STARTTLS and a plaintext GO in one write: the GO never reaches negotiation.
    early.write(Buffer.concat([optionBytes(OPT_STARTTLS), optionBytes(OPT_GO, Buffer.alloc(6))]));
    expect((await early.optionReply())?.type).toBe(REP_ACK);
    await early.closedByServer();

    const plain = await greeted();
    plain.option(OPT_STARTTLS);
    expect((await plain.optionReply())?.type).toBe(REP_ACK);
    plain.write(optionBytes(OPT_GO, Buffer.alloc(6))); // plaintext where the ClientHello belongs
    expect(await plain.read(1)).toBeNull();
    await plain.closedByServer();

    const gone = await greeted();
    gone.option(OPT_STARTTLS);
    expect((await gone.optionReply())?.type).toBe(REP_ACK);
    gone.write(Buffer.from([0x16, 0x03, 0x01])); // a ClientHello cut short, then gone
    gone.close();
    await idle();

    const c = await greeted();
    expect((await secureRead(c)).readUInt32BE(4)).toBe(0);
    await idle();
  });
});
