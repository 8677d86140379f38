// Linked into prebuilds only (BLOCKRING_STATIC_RUNTIME=1), which carry a
// static libstdc++: its std::random_device calls arc4random, new in glibc
// 2.36, and would raise the glibc a prebuild needs from 2.34 (RHEL 9; Ubuntu
// 22.04 has 2.35) to 2.36. This definition, hidden inside the addon, serves
// that reference through getrandom(2) instead.
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t v = 0;
  long r;
  do {
    r = syscall(SYS_getrandom, &v, sizeof(v), 0);
  } while (r < 0 && errno == EINTR);
  return v;
}
