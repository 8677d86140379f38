// The house style's layer rule, checked on the compiled addon: raw syscalls
// live in native/kernel only. Every object file of the other native layers
// (engine, format, binding, vhost) is read with `nm -u`, and none may call a
// libc syscall wrapper; the kernel layer must (so the check sees real symbols).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const OBJ = path.join(__dirname, '..', 'build', 'Release', 'obj.target', 'blockring', 'native');

// glibc's wrappers of system calls (and the sleeps and clocks built on them).
const WRAPPERS = new Set(`read write pread pread64 pwrite pwrite64 readv writev preadv preadv64 preadv2 pwritev pwritev64
  pwritev2 open open64 openat openat64 creat close dup dup2 dup3 fcntl fcntl64 ioctl mmap mmap64 munmap mremap madvise
  mprotect mlock mlock2 munlock mincore msync fsync fdatasync fallocate fallocate64 ftruncate ftruncate64 truncate fstat
  fstat64 stat stat64 lstat statx lseek lseek64 syscall eventfd eventfd_read eventfd_write epoll_create epoll_create1
  epoll_ctl epoll_wait poll ppoll select pselect nanosleep clock_nanosleep usleep sleep clock_gettime gettimeofday
  sigprocmask pthread_sigmask sigaction signal kill raise socket socketpair accept accept4 bind listen connect recv
  recvfrom recvmsg send sendto sendmsg setsockopt getsockopt shutdown unlink unlinkat rename memfd_create flock lockf
  posix_fadvise posix_fallocate sync_file_range copy_file_range sendfile splice getpid gettid sched_yield fstatfs
  statfs pipe pipe2 mkstemp`.split(/\s+/).filter(Boolean));

function objects(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? objects(path.join(dir, e.name)) : e.name.endsWith('.o') ? [path.join(dir, e.name)] : []);
}

const undefinedSymbols = (o: string): string[] =>
  execFileSync('nm', ['-u', o], { encoding: 'utf8' }).split('\n').map((l) => l.trim().split(/\s+/).pop()!).filter(Boolean);

it('no object outside native/kernel calls a syscall wrapper (nm -u of the source build)', (ctx) => {
  if (!fs.existsSync(OBJ)) {
    console.log(`skipped: no source build at ${OBJ} (the addon came from a prebuild)`);
    ctx.skip();
  }
  const all = objects(OBJ);
  const kernel = all.filter((o) => path.relative(OBJ, o).startsWith(`kernel${path.sep}`));
  const others = all.filter((o) => !kernel.includes(o));
  expect(kernel.length).toBeGreaterThan(5);
  expect(others.length).toBeGreaterThan(10);
  // The kernel layer does call them: the check reads real symbol names.
  expect(kernel.flatMap(undefinedSymbols).filter((s) => WRAPPERS.has(s))).toEqual(expect.arrayContaining(['close', 'memfd_create', 'syscall']));
  const calls = others.flatMap((o) => undefinedSymbols(o).filter((s) => WRAPPERS.has(s)).map((s) => `${path.relative(OBJ, o)}: ${s}`));
  expect(calls).toEqual([]);
});
