import fs from 'node:fs';
import path from 'node:path';

import { typeError } from '../validate';
import { serveNbd, type NbdTlsOptions } from '../server/nbd/server';
import { openServedImage, serveUntilSignal, servingOptions } from './serve';
import { parseCommand, type Subcommand } from './subcommand';

const USAGE = `usage: blockring nbd IMAGE [--socket PATH | --listen HOST:PORT] [options]

Exports IMAGE over NBD until SIGINT or SIGTERM, then finishes the requests in
flight, flushes and exits. Prints the URI it serves on stdout.

options:
  --socket PATH        unix socket to listen on
  --listen HOST:PORT   TCP address to listen on (default 127.0.0.1:10809)
  --format FORMAT      raw (default) or qcow2
  --read-only          export read-only
  --name EXPORT        export name (default '')
  --cache MODE         writeback (default: the page cache) or none (O_DIRECT)
  --engine NAME        auto, io_uring, libaio, threads, mmap (default auto)
  --tls-creds DIR      TLS with DIR/server-cert.pem and DIR/server-key.pem (as qemu-nbd)
  --tls-cert FILE      TLS certificate chain (PEM); with --tls-key
  --tls-key FILE       TLS private key (PEM)
  --tls MODE           require (default with credentials: plaintext clients are refused),
                       on (TLS offered, plaintext served too) or off
`;

function tlsOptions(v: { tls?: string; 'tls-creds'?: string; 'tls-cert'?: string; 'tls-key'?: string }): NbdTlsOptions | undefined {
  const mode = v.tls ?? 'require';
  if (mode !== 'require' && mode !== 'on' && mode !== 'off') throw typeError('ERR_INVALID_ARG_VALUE', `--tls must be require, on or off, got '${mode}'`);
  if (v['tls-creds'] !== undefined && (v['tls-cert'] !== undefined || v['tls-key'] !== undefined)) {
    throw typeError('ERR_INVALID_ARG_VALUE', '--tls-creds excludes --tls-cert and --tls-key');
  }
  const dir = v['tls-creds'];
  const cert = dir !== undefined ? path.join(dir, 'server-cert.pem') : v['tls-cert'];
  const key = dir !== undefined ? path.join(dir, 'server-key.pem') : v['tls-key'];
  if (cert === undefined && key === undefined) {
    if (v.tls !== undefined && mode !== 'off') throw typeError('ERR_INVALID_ARG_VALUE', `--tls ${mode} needs --tls-creds or --tls-cert and --tls-key`);
    return undefined;
  }
  if (cert === undefined || key === undefined) throw typeError('ERR_INVALID_ARG_VALUE', '--tls-cert and --tls-key go together');
  if (mode === 'off') return undefined;
  return { cert: fs.readFileSync(cert), key: fs.readFileSync(key), mode };
}

function parseListen(v: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port >= 0 && port <= 65535)) throw typeError('ERR_INVALID_ARG_VALUE', `--listen wants HOST:PORT, got '${v}'`);
  return { host: m[1], port };
}

export const nbd: Subcommand = {
  name: 'nbd',
  summary: 'export an image over NBD (unix socket or TCP)',
  async run(argv) {
    const parsed = parseCommand(argv, {
      ...servingOptions,
      listen: { type: 'string' },
      name: { type: 'string', default: '' },
      cache: { type: 'string', default: 'writeback' },
      tls: { type: 'string' },
      'tls-creds': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    }, USAGE);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const image = positionals[0];
    if (positionals.length !== 1 || image === undefined || (values.socket && values.listen)) {
      process.stderr.write(USAGE);
      return 2;
    }
    if (values.cache !== 'writeback' && values.cache !== 'none') throw typeError('ERR_INVALID_ARG_VALUE', `--cache must be writeback or none, got '${values.cache}'`);
    const where = values.socket ? { socket: values.socket } : parseListen(values.listen ?? '127.0.0.1:10809');
    const readOnly = values['read-only'];
    const tls = tlsOptions(values);
    const served = await openServedImage(image, { format: values.format, engine: values.engine, readOnly, direct: values.cache === 'none' });
    const server = await serveNbd(served.dev, { ...where, name: values.name, readOnly, ring: served.ring, ...(tls ? { tls } : {}) });
    process.stdout.write(`${server.uri}\n`);
    process.stderr.write(`blockring: serving ${image} (${values.format}, engine ${served.ring.engine}) at ${server.uri}\n`);
    return serveUntilSignal(served, server);
  },
};
