// A Linux guest under QEMU TCG for the vhost-user-blk tests. Installs what
// it needs once, cached in /var/tmp/blockring-guest: the Debian cloud kernel
// (apt-get download + dpkg -x; virtio_pci and virtio_blk are modules there),
// and an initramfs of busybox-static, those modules, and the host's fio with
// the libraries ldd lists. Each boot appends a small cpio holding the test
// script (the kernel unpacks concatenated archives in order).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const CACHE = process.env.BLOCKRING_GUEST_CACHE ?? '/var/tmp/blockring-guest';
// In dependency order (each module's depends= names only earlier ones).
const MODULES = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'virtio_blk'];

export interface GuestKit {
  kernel: string;
  initrd: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why the guest tests cannot run here, or null. */
export function guestUnavailable(): string | null {
  for (const tool of ['qemu-system-x86_64', 'busybox', 'fio', 'apt-get', 'dpkg']) {
    try {
      sh('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

function newestCloudKernel(): string {
  const out = sh('apt-cache', ['search', '--names-only', '^linux-image-6\\.1\\.0-[0-9]+-cloud-amd64$']);
  const names = out.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
  const version = (n: string) => Number(/6\.1\.0-(\d+)-/.exec(n)?.[1] ?? 0);
  names.sort((a, b) => version(a) - version(b));
  const pick = names.pop();
  if (!pick) throw new Error('apt-cache knows no linux-image-6.1.0-*-cloud-amd64 (run apt-get update)');
  return pick;
}

/** Builds (or finds) the kernel and the base initramfs. */
export function guestKit(): GuestKit {
  const kernelDir = path.join(CACHE, 'kernel');
  // Bump the name when the initramfs contents change: it is cached.
  const initrd = path.join(CACHE, 'base-initrd-2.cpio');
  fs.mkdirSync(CACHE, { recursive: true });
  if (!fs.existsSync(path.join(kernelDir, 'boot'))) {
    let deb = fs.readdirSync(CACHE).find((f) => /^linux-image-6\.1\.0-\d+-cloud-amd64_.*\.deb$/.test(f));
    if (!deb) {
      sh('apt-get', ['download', newestCloudKernel()], CACHE);
      deb = fs.readdirSync(CACHE).find((f) => /^linux-image-6\.1\.0-\d+-cloud-amd64_.*\.deb$/.test(f));
    }
    if (!deb) throw new Error('apt-get download left no kernel package');
    fs.rmSync(`${kernelDir}.tmp`, { recursive: true, force: true });
    sh('dpkg', ['-x', path.join(CACHE, deb), `${kernelDir}.tmp`]);
    fs.renameSync(`${kernelDir}.tmp`, kernelDir);
  }
  const kernel = path.join(kernelDir, 'boot', fs.readdirSync(path.join(kernelDir, 'boot')).find((f) => f.startsWith('vmlinuz-'))!);
  if (!fs.existsSync(initrd)) buildInitrd(kernelDir, initrd);
  return { kernel, initrd };
}

function buildInitrd(kernelDir: string, out: string): void {
  const root = `${out}.root`;
  fs.rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'lib/modules', 'lib64', 'usr/bin']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.copyFileSync(sh('sh', ['-c', 'command -v busybox']).trim(), path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  const release = fs.readdirSync(path.join(kernelDir, 'lib', 'modules'))[0]!;
  const modRoot = path.join(kernelDir, 'lib', 'modules', release, 'kernel');
  const found = sh('find', [modRoot, '-name', '*.ko']).split('\n');
  for (const m of MODULES) {
    const ko = found.find((f) => path.basename(f) === `${m}.ko`);
    if (!ko) throw new Error(`module ${m}.ko not in the kernel package`);
    fs.copyFileSync(ko, path.join(root, 'lib', 'modules', `${m}.ko`));
  }
  // fio and every library it links, at the paths the loader looks for them.
  const fio = sh('sh', ['-c', 'command -v fio']).trim();
  fs.copyFileSync(fio, path.join(root, 'usr', 'bin', 'fio'));
  fs.chmodSync(path.join(root, 'usr', 'bin', 'fio'), 0o755);
  for (const line of sh('ldd', [fio]).split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(/.exec(line);
    if (!m) continue;
    const lib = m[1]!;
    fs.mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(root, lib));
  }
  fs.writeFileSync(path.join(root, 'init'), [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'export PATH=/bin:/usr/bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev',
    ...MODULES.map((m) => `insmod /lib/modules/${m}.ko`),
    'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.5; done',
    'echo GUEST-UP',
    'sh /test.sh 2>&1',
    'echo GUEST-EXIT $?',
    'poweroff -f',
    '',
  ].join('\n'), { mode: 0o755 });
  fs.writeFileSync(`${out}.tmp`, cpio(root));
  fs.renameSync(`${out}.tmp`, out);
  fs.rmSync(root, { recursive: true, force: true });
}

function cpio(root: string): Buffer {
  return execFileSync('sh', ['-c', 'find . | busybox cpio -o -H newc 2>/dev/null'], { cwd: root, maxBuffer: 1 << 30 });
}

/** The base initramfs with files (path in the guest -> contents) appended. */
export function initrdWith(kit: GuestKit, dir: string, files: Record<string, string | Buffer>): string {
  const root = path.join(dir, 'extra-root');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const [p, data] of Object.entries(files)) fs.writeFileSync(path.join(root, p), data, { mode: 0o755 });
  const out = path.join(dir, 'initrd.cpio');
  fs.writeFileSync(out, Buffer.concat([fs.readFileSync(kit.initrd), cpio(root)]));
  return out;
}

export interface Guest {
  child: ChildProcess;
  /** Everything on the serial console so far. */
  output(): string;
  /** Resolves when the console has printed a line matching re (rejects on exit or timeout). */
  waitFor(re: RegExp, ms: number): Promise<string>;
  exited: Promise<number | null>;
}

/** Boots a TCG guest whose only disk is the vhost-user-blk device on socket. */
export function bootGuest(kit: GuestKit, initrd: string, socket: string, opts: { queues: number; reconnect?: boolean }): Guest {
  const args = [
    '-accel', 'tcg', '-smp', '2', '-m', '1G', '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
    '-object', 'memory-backend-memfd,id=mem,size=1G,share=on', '-machine', 'q35,memory-backend=mem',
    '-kernel', kit.kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet loglevel=3',
    '-chardev', `socket,path=${socket},id=c0${opts.reconnect ? ',reconnect=1' : ''}`,
    '-device', `vhost-user-blk-pci,chardev=c0,num-queues=${opts.queues}`,
  ];
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const feed = (d: Buffer) => {
    out += d.toString();
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', feed);
  child.stderr!.on('data', feed);
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    done = true;
    for (const l of [...listeners]) l();
    resolve(code);
  }));
  return {
    child,
    output: () => out,
    exited,
    waitFor(re, ms) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            resolve(m[0]);
          } else if (done) {
            cleanup();
            reject(new Error(`guest exited before ${re}:\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re}:\n${out.slice(-3000)}`));
        }, ms);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
