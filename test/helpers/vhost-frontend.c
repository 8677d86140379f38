// vhost-frontend SOCKET [--queues N] [--qsize N] [--no-event-idx] [--indirect] [--split]
// A vhost-user frontend (the VMM's side) for tests and benchmarks: guest RAM
// is a memfd shared with the backend, the rings live in it, requests are
// built as a virtio-blk driver builds them. Commands on stdin, one line each,
// one result line on stdout each:
//   write Q SECTOR BYTES SEED [SEGS]   pattern write          -> "status S"
//   read Q SECTOR BYTES SEED [SEGS]    read, pattern check    -> "status S match|mismatch"
//   readzero Q SECTOR BYTES            read, expect zeros     -> "status S zero|nonzero"
//   flush Q / getid Q                                         -> "status S" / "status S ID"
//   discard Q SECTOR N / wzeroes Q SECTOR N UNMAP             -> "status S"
//   raw Q HEAD N a l f n ... a l f n   N descriptors at table index 0.. (address a is
//                                      guest-physical; "H+x"/"S+x" = header/status
//                                      slot + x), head HEAD queued -> "used ID LEN STATUS" | "timeout"
//   itable Q N a l f n ...              N descriptors into the indirect table at H+64 -> "ok"
//   avail Q IDX                        publish avail idx IDX (no entries), kick -> "ok"
//   msg TYPE FLAGS SIZE [HEXBYTES]     raw message, HEXBYTES as payload -> "sent"
//   trunc                              a header promising 64 bytes, nothing after -> "sent"
//   ping                               GET_QUEUE_NUM round trip -> "alive N" | "dead"
//   burst Q N BYTES                    N writes in flight, then exit at once (vanish)
//   bench Q DEPTH MS BYTES SPAN_SECTORS random reads -> "iops X"
//   config                             GET_CONFIG -> "capacity C blk_size B seg_max S num_queues Q"
//   quit
// Compiled by the vhost-user tests (test/helpers/vhost-frontend.ts).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (64u << 20)
#define GPA_BASE 0x40000000ull
#define QUEUE_STRIDE 0x100000u
#define SLOT_AREA 0x80000u
#define SLOT_BYTES 512u
#define DATA_BASE (16u << 20)
#define DATA_MAX (128u << 10)
#define MAX_QUEUES 4
#define MAX_SLOTS 64

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

static int sock = -1;
static uint8_t* mem;
static unsigned nqueues = 1, qsize = 256;
static int event_idx = 1, indirect = 0, split = 0;
static uint64_t features;
static int kick[MAX_QUEUES], call[MAX_QUEUES];
static uint16_t avail_idx[MAX_QUEUES], last_used[MAX_QUEUES];

static uint64_t gpa(const void* p) { return GPA_BASE + (uint64_t)((const uint8_t*)p - mem); }
static uint8_t* qbase(unsigned q) { return mem + q * QUEUE_STRIDE; }
static struct desc* qdesc(unsigned q) { return (struct desc*)qbase(q); }
static uint16_t* qavail(unsigned q) { return (uint16_t*)(qbase(q) + 16u * qsize); }
static uint16_t* qused(unsigned q) { return (uint16_t*)(qbase(q) + 0x40000); }
static uint8_t* slot(unsigned q, unsigned s) { return qbase(q) + SLOT_AREA + s * SLOT_BYTES; }
static uint8_t* data(unsigned q, unsigned s) { return mem + DATA_BASE + (q * MAX_SLOTS + s) * DATA_MAX; }

static int send_msg(uint32_t type, uint32_t flags, const void* payload, uint32_t size, const int* fds, int nfds) {
  uint8_t buf[12 + 512];
  uint32_t h[3] = {type, flags ? flags : 1, size};
  memcpy(buf, h, 12);
  if (size) memcpy(buf + 12, payload, size);
  struct iovec iov = {buf, 12 + size};
  char control[CMSG_SPACE(sizeof(int) * 8)];
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds) {
    m.msg_control = control;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  return sendmsg(sock, &m, MSG_NOSIGNAL) == (ssize_t)(12 + size) ? 0 : -1;
}

static int recv_reply(void* payload, uint32_t max, int timeout_ms) {
  struct pollfd p = {sock, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return -1;
  uint32_t h[3];
  if (recv(sock, h, 12, MSG_WAITALL) != 12 || h[2] > max) return -1;
  if (h[2] && recv(sock, payload, h[2], MSG_WAITALL) != (ssize_t)h[2]) return -1;
  return (int)h[2];
}

static uint64_t get_u64(uint32_t type) {
  uint64_t v = 0;
  if (send_msg(type, 1, NULL, 0, NULL, 0) || recv_reply(&v, 8, 5000) != 8) {
    fprintf(stderr, "no reply to %u\n", type);
    exit(3);
  }
  return v;
}

static void set_u64(uint32_t type, uint64_t v, int fd) {
  if (send_msg(type, 1, &v, 8, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0)) exit(3);
}

static void setup(void) {
  int fd = memfd_create("guest-ram", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, MEM_SIZE)) exit(2);
  mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) exit(2);
  uint64_t offered = get_u64(1);
  features = offered & ((1ull << 32) | (1ull << 30) | (1ull << 2) | (1ull << 6) | (1ull << 9) | (1ull << 12) |
                        (1ull << 13) | (1ull << 14) | (1ull << 5));
  if (event_idx) features |= offered & (1ull << 29);
  if (indirect) features |= offered & (1ull << 28);
  set_u64(2, features, -1);
  uint64_t proto = get_u64(15);
  set_u64(16, proto & ((1ull << 0) | (1ull << 9)), -1);
  send_msg(3, 1, NULL, 0, NULL, 0);
  struct {
    uint32_t n, pad;
    uint64_t r[2][4];
  } table = {split ? 2u : 1u, 0, {{0}}};
  uint64_t half = split ? MEM_SIZE / 2 : MEM_SIZE;
  table.r[0][0] = GPA_BASE;
  table.r[0][1] = half;
  table.r[0][2] = (uint64_t)(uintptr_t)mem;
  table.r[0][3] = 0;
  int fds[2] = {fd, fd};
  if (split) {
    table.r[1][0] = GPA_BASE + half;
    table.r[1][1] = half;
    table.r[1][2] = (uint64_t)(uintptr_t)mem + half;
    table.r[1][3] = half;
  }
  send_msg(5, 1, &table, 8 + 32 * table.n, fds, (int)table.n);
  for (unsigned q = 0; q < nqueues; q++) {
    uint32_t st[2] = {q, qsize};
    send_msg(8, 1, st, 8, NULL, 0);
    uint64_t addr[5];
    uint32_t* a32 = (uint32_t*)addr;
    a32[0] = q;
    a32[1] = 0;
    addr[1] = (uint64_t)(uintptr_t)qdesc(q);
    addr[2] = (uint64_t)(uintptr_t)qused(q);
    addr[3] = (uint64_t)(uintptr_t)qavail(q);
    addr[4] = 0;
    send_msg(9, 1, addr, 40, NULL, 0);
    st[1] = 0;
    send_msg(10, 1, st, 8, NULL, 0);
    call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    kick[q] = eventfd(0, EFD_CLOEXEC);
    set_u64(13, q, call[q]);
    set_u64(12, q, kick[q]);
    st[1] = 1;
    send_msg(18, 1, st, 8, NULL, 0);
  }
}

static void do_kick(unsigned q, uint16_t old_idx) {
  uint16_t new_idx = avail_idx[q];
  if (features & (1ull << 29)) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t ev = *(volatile uint16_t*)((uint8_t*)qused(q) + 4 + 8 * qsize);
    if ((uint16_t)(new_idx - ev - 1) >= (uint16_t)(new_idx - old_idx)) return;  // backend asked not to be kicked
  }
  uint64_t one = 1;
  if (write(kick[q], &one, 8) != 8) exit(4);
}

static void publish(unsigned q, uint16_t head) {
  uint16_t* av = qavail(q);
  av[2 + avail_idx[q] % qsize] = head;
  uint16_t old = avail_idx[q]++;
  __atomic_store_n(&av[1], avail_idx[q], __ATOMIC_RELEASE);
  do_kick(q, old);
}

// One used entry, waiting up to timeout_ms. 0 and *id/*len, or -1.
static int reap(unsigned q, uint32_t* id, uint32_t* len, int timeout_ms) {
  uint16_t* used = qused(q);
  for (;;) {
    if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != last_used[q]) {
      uint32_t* e = (uint32_t*)(used + 2) + 2 * (last_used[q] % qsize);
      *id = e[0];
      *len = e[1];
      last_used[q]++;
      if (features & (1ull << 29)) qavail(q)[2 + qsize] = last_used[q];  // used_event: interrupt on the next
      return 0;
    }
    struct pollfd p = {call[q], POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return -1;
    uint64_t v;
    if (read(call[q], &v, 8) < 0 && errno != EAGAIN) return -1;
  }
}

static void fill(uint8_t* p, uint64_t off, uint32_t bytes, uint64_t seed) {
  for (uint32_t i = 0; i < bytes; i += 8) {
    uint64_t w = (seed * 0x9E3779B97F4A7C15ull) ^ (off + i);
    memcpy(p + i, &w, 8);
  }
}

// Builds request s on queue q: header, data in segs pieces, status.
static uint16_t build(unsigned q, unsigned s, uint32_t type, uint64_t sector, uint8_t* buf, uint32_t bytes,
                      unsigned segs, int data_in) {
  uint8_t* sl = slot(q, s);
  uint32_t hdr[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};
  memcpy(sl, hdr, 16);
  sl[16] = 0xff;
  struct desc d[16];
  unsigned n = 0;
  d[n++] = (struct desc){gpa(sl), 16, 0, 0};
  if (bytes) {
    if (!segs) segs = 1;
    uint32_t each = (bytes / segs + 511) & ~511u, at = 0;
    while (at < bytes && n < 15) {
      uint32_t l = bytes - at < each ? bytes - at : each;
      d[n++] = (struct desc){gpa(buf + at), l, (uint16_t)(data_in ? 2 : 0), 0};
      at += l;
    }
  }
  d[n++] = (struct desc){gpa(sl + 16), 1, 2, 0};
  if (indirect) {
    struct desc* t = (struct desc*)(sl + 64);
    for (unsigned i = 0; i < n; i++) {
      t[i] = d[i];
      if (i + 1 < n) t[i].flags |= 1, t[i].next = (uint16_t)(i + 1);
    }
    qdesc(q)[s] = (struct desc){gpa(t), n * 16, 4, 0};
    return (uint16_t)s;
  }
  unsigned base = s * 3;  // direct chains: header, one data piece, status
  if (n > 3) {
    fprintf(stderr, "direct chains carry one data segment\n");
    exit(5);
  }
  for (unsigned i = 0; i < n; i++) {
    qdesc(q)[base + i] = d[i];
    if (i + 1 < n) qdesc(q)[base + i].flags |= 1, qdesc(q)[base + i].next = (uint16_t)(base + i + 1);
  }
  return (uint16_t)base;
}

static int run_one(unsigned q, uint32_t type, uint64_t sector, uint8_t* buf, uint32_t bytes, unsigned segs,
                   int data_in) {
  uint16_t head = build(q, 0, type, sector, buf, bytes, segs, data_in);
  publish(q, head);
  uint32_t id, len;
  if (reap(q, &id, &len, 5000)) return -1;
  return slot(q, 0)[16];
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void bench(unsigned q, unsigned depth, unsigned ms, uint32_t bytes, uint64_t span) {
  uint64_t rng = 88172645463325252ull, done = 0;
  unsigned inflight = 0, nfree = depth, free_slots[MAX_SLOTS];
  uint16_t kicked = avail_idx[q];
  for (unsigned i = 0; i < depth; i++) free_slots[i] = i;
  uint64_t blocks = span * 512 / bytes;
  double start = now_s(), end = start + ms / 1000.0;
  for (;;) {
    int stop = now_s() >= end;
    while (!stop && nfree) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      unsigned s = free_slots[--nfree];
      uint16_t head = build(q, s, 0, (rng % blocks) * (bytes / 512), data(q, s), bytes, 1, 1);
      qavail(q)[2 + avail_idx[q] % qsize] = head;
      avail_idx[q]++;
      inflight++;
    }
    if (avail_idx[q] != kicked) {
      __atomic_store_n(&qavail(q)[1], avail_idx[q], __ATOMIC_RELEASE);
      do_kick(q, kicked);
      kicked = avail_idx[q];
    }
    if (!inflight) break;
    uint32_t id, len;
    if (reap(q, &id, &len, 5000)) {
      printf("timeout\n");
      return;
    }
    unsigned fs = indirect ? id : id / 3;
    if (fs >= depth || slot(q, fs)[16] != 0) {
      printf("error\n");
      return;
    }
    done++;
    inflight--;
    free_slots[nfree++] = fs;
  }
  printf("iops %.0f\n", done / (now_s() - start));
}

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--queues") && i + 1 < argc) nqueues = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--qsize") && i + 1 < argc) qsize = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-event-idx")) event_idx = 0;
    else if (!strcmp(argv[i], "--indirect")) indirect = 1;
    else if (!strcmp(argv[i], "--split")) split = 1;
  }
  if (nqueues > MAX_QUEUES || qsize > 4096 || qsize < 4) return 1;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, argv[1], sizeof(a.sun_path) - 1);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  for (int tries = 0; connect(sock, (struct sockaddr*)&a, sizeof(a)) < 0; tries++) {
    if (tries > 100) return 2;
    usleep(20000);
  }
  setup();
  char line[8192];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof(line), stdin)) {
    char cmd[32] = "";
    unsigned q = 0, segs = 1;
    unsigned long long sector = 0, bytes = 0, seed = 0, n = 0, unmap = 0;
    sscanf(line, "%31s", cmd);
    if (!strcmp(cmd, "quit")) break;
    if (!strcmp(cmd, "write") || !strcmp(cmd, "read")) {
      sscanf(line, "%*s %u %llu %llu %llu %u", &q, &sector, &bytes, &seed, &segs);
      int in = cmd[0] == 'r';
      uint8_t* buf = data(q, 0);
      if (bytes > DATA_MAX * 8) bytes = DATA_MAX * 8;
      if (!in) fill(buf, sector * 512, (uint32_t)bytes, seed);
      else memset(buf, 0xa5, bytes);
      int st = run_one(q, in ? 0 : 1, sector, buf, (uint32_t)bytes, segs, in);
      if (!in) {
        printf("status %d\n", st);
      } else {
        uint8_t* want = malloc(bytes);
        fill(want, sector * 512, (uint32_t)bytes, seed);
        printf("status %d %s\n", st, memcmp(want, buf, bytes) ? "mismatch" : "match");
        free(want);
      }
    } else if (!strcmp(cmd, "readzero")) {
      sscanf(line, "%*s %u %llu %llu", &q, &sector, &bytes);
      uint8_t* buf = data(q, 0);
      memset(buf, 0xa5, bytes);
      int st = run_one(q, 0, sector, buf, (uint32_t)bytes, 1, 1);
      int zero = 1;
      for (unsigned long long i = 0; i < bytes; i++) zero &= buf[i] == 0;
      printf("status %d %s\n", st, zero ? "zero" : "nonzero");
    } else if (!strcmp(cmd, "flush")) {
      sscanf(line, "%*s %u", &q);
      printf("status %d\n", run_one(q, 4, 0, NULL, 0, 0, 0));
    } else if (!strcmp(cmd, "getid")) {
      sscanf(line, "%*s %u", &q);
      uint8_t* buf = data(q, 0);
      memset(buf, 0, 20);
      int st = run_one(q, 8, 0, buf, 20, 1, 1);
      printf("status %d %.20s\n", st, (char*)buf);
    } else if (!strcmp(cmd, "discard") || !strcmp(cmd, "wzeroes")) {
      sscanf(line, "%*s %u %llu %llu %llu", &q, &sector, &n, &unmap);
      uint8_t* seg = slot(q, 0) + 32;
      uint32_t s32[4] = {(uint32_t)sector, (uint32_t)(sector >> 32), (uint32_t)n, (uint32_t)unmap};
      memcpy(seg, s32, 16);
      printf("status %d\n", run_one(q, cmd[0] == 'd' ? 11 : 13, 0, seg, 16, 1, 0));
    } else if (!strcmp(cmd, "raw")) {
      unsigned head = 0, cnt = 0;
      int off = 0;
      sscanf(line, "%*s %u %u %u%n", &q, &head, &cnt, &off);
      char* p = line + off;
      uint8_t* sl = slot(q, 0);
      memset(sl, 0, 16);
      sl[16] = 0xff;
      for (unsigned i = 0; i < cnt && i < qsize; i++) {
        char as[64];
        unsigned l, f, nx;
        int used = 0;
        if (sscanf(p, "%63s %u %u %u%n", as, &l, &f, &nx, &used) != 4) break;
        p += used;
        uint64_t addr;
        if (as[0] == 'H' && as[1] == '+') addr = gpa(sl) + strtoull(as + 2, NULL, 0);
        else if (as[0] == 'S' && as[1] == '+') addr = gpa(sl + 16) + strtoull(as + 2, NULL, 0);
        else addr = strtoull(as, NULL, 0);
        qdesc(q)[i] = (struct desc){addr, l, (uint16_t)f, (uint16_t)nx};
      }
      publish(q, (uint16_t)head);
      uint32_t id, len;
      if (reap(q, &id, &len, 300)) printf("timeout\n");
      else printf("used %u %u %d\n", id, len, sl[16]);
    } else if (!strcmp(cmd, "itable")) {
      unsigned cnt = 0;
      int off = 0;
      sscanf(line, "%*s %u %u%n", &q, &cnt, &off);
      char* p = line + off;
      struct desc* t = (struct desc*)(slot(q, 0) + 64);
      for (unsigned i = 0; i < cnt && i < 24; i++) {
        char as[64];
        unsigned l, f, nx;
        int used = 0;
        if (sscanf(p, "%63s %u %u %u%n", as, &l, &f, &nx, &used) != 4) break;
        p += used;
        uint64_t addr = as[0] == 'H' ? gpa(slot(q, 0)) + strtoull(as + 2, NULL, 0)
                        : as[0] == 'S' ? gpa(slot(q, 0) + 16) + strtoull(as + 2, NULL, 0)
                                       : strtoull(as, NULL, 0);
        t[i] = (struct desc){addr, l, (uint16_t)f, (uint16_t)nx};
      }
      printf("ok\n");
    } else if (!strcmp(cmd, "avail")) {
      unsigned idx = 0;
      sscanf(line, "%*s %u %u", &q, &idx);
      __atomic_store_n(&qavail(q)[1], (uint16_t)idx, __ATOMIC_RELEASE);
      uint64_t one = 1;
      if (write(kick[q], &one, 8) != 8) return 4;
      printf("ok\n");
    } else if (!strcmp(cmd, "msg")) {
      unsigned type = 0, flags = 0, size = 0;
      int off = 0;
      char hex[2100] = "";
      sscanf(line, "%*s %u %u %u%n", &type, &flags, &size, &off);
      sscanf(line + off, "%2099s", hex);
      uint8_t payload[1024] = {0};
      size_t hl = strlen(hex) / 2;
      for (size_t i = 0; i < hl && i < sizeof(payload); i++) sscanf(hex + 2 * i, "%2hhx", &payload[i]);
      uint32_t h[3] = {type, flags, size};
      // The header claims size bytes; what follows is the hex payload (maybe shorter).
      struct iovec iov[2] = {{h, 12}, {payload, hl < sizeof(payload) ? hl : sizeof(payload)}};
      struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
      sendmsg(sock, &m, MSG_NOSIGNAL);
      printf("sent\n");
    } else if (!strcmp(cmd, "trunc")) {
      uint32_t h[3] = {17, 1, 64};
      send(sock, h, 12, MSG_NOSIGNAL);
      printf("sent\n");
    } else if (!strcmp(cmd, "ping")) {
      uint64_t v = 0;
      if (send_msg(17, 1, NULL, 0, NULL, 0) || recv_reply(&v, 8, 5000) != 8) printf("dead\n");
      else printf("alive %llu\n", (unsigned long long)v);
    } else if (!strcmp(cmd, "config")) {
      uint8_t cfg[12 + 60] = {0};
      uint32_t* c = (uint32_t*)cfg;
      c[0] = 0, c[1] = 60, c[2] = 0;
      uint8_t out[12 + 60];
      if (send_msg(24, 1, cfg, sizeof(cfg), NULL, 0) || recv_reply(out, sizeof(out), 5000) != (int)sizeof(out)) {
        printf("dead\n");
        continue;
      }
      uint64_t capacity;
      uint32_t seg_max, blk_size;
      uint16_t nq;
      memcpy(&capacity, out + 12, 8);
      memcpy(&seg_max, out + 12 + 12, 4);
      memcpy(&blk_size, out + 12 + 20, 4);
      memcpy(&nq, out + 12 + 34, 2);
      printf("capacity %llu blk_size %u seg_max %u num_queues %u\n", (unsigned long long)capacity, blk_size, seg_max,
             nq);
    } else if (!strcmp(cmd, "burst")) {
      sscanf(line, "%*s %u %llu %llu", &q, &n, &bytes);
      if (n > MAX_SLOTS) n = MAX_SLOTS;
      for (unsigned s = 0; s < n; s++) {
        uint16_t head = build(q, s, 1, s * (bytes / 512), data(q, s), (uint32_t)bytes, 1, 0);
        publish(q, head);
      }
      _exit(0);  // vanish with the writes in flight
    } else if (!strcmp(cmd, "bench")) {
      unsigned depth = 32, ms = 1000;
      unsigned long long span = 0;
      sscanf(line, "%*s %u %u %u %llu %llu", &q, &depth, &ms, &bytes, &span);
      if (depth > MAX_SLOTS) depth = MAX_SLOTS;
      bench(q, depth, ms, (uint32_t)bytes, span);
    } else {
      printf("unknown\n");
    }
  }
  return 0;
}
