/*
 * lattice-sandbox: executes a sandbox plan computed by lattice (sandbox/plan.ts). It decides nothing itself.
 *
 * Why C: user namespaces cannot be unshared from a multithreaded process (Node is one), and a Node stage costs
 * ~35 ms against ~2.5 ms here. The helper is small on purpose; every step below is one plan op or one fixed step.
 *
 * Protocol. fd 3: the plan, read to EOF (NUL-terminated strings: an op name then its arguments, see OPS below).
 *           fd 4: status lines for lattice: "landlock <abi>" first (0: none), "ready" once the agent's process
 *                 is confined and waits for the go, or "error <message>" when setup fails (exit status 125 then).
 *           fd 5: the go: lattice writes "g" once the start is on record and the agent's credential is in place;
 *                 anything else (EOF) ends the run with 125 before the agent's command runs. So the namespaces
 *                 are built while lattice enrolls the sandbox identity, and nothing runs before the evidence.
 * Process tree:  helper (outside, waits) -> init (PID 1 of the new pid namespace: reaps, forwards signals)
 *                -> relays (loopback TCP -> unix socket) and the agent.
 * Exit status: the agent's, or 128+n when a signal ended it. Every process dies with its parent (PDEATHSIG), and
 * when init exits the kernel kills whatever is left in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define PLAN_FD 3
#define STATUS_FD 4
#define GO_FD 5
#define MAX_PLAN (1 << 20)
#define MAX_ITEMS 4096

/* Landlock ABI (Debian 12's headers stop at ABI 2, so the constants are ours). */
struct ll_ruleset_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct ll_path_beneath { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
struct ll_net_port { uint64_t allowed_access; uint64_t port; };
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_CREATE_VERSION 1U
#define LL_FS_FILE_RIGHTS 0xC007ULL /* execute, write_file, read_file, truncate, ioctl_dev: the rights a file takes */

extern char **environ;

static const char *status_prefix = "lattice-sandbox";

/* Report a setup failure to lattice (fd 4) and stderr, then exit 125 (distinct from any agent status). */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(STATUS_FD, "error %s: %s\n", msg, errno ? strerror(errno) : "invalid plan");
  dprintf(2, "%s: %s: %s\n", status_prefix, msg, errno ? strerror(errno) : "invalid plan");
  _exit(125);
}

/* ---- the plan ---------------------------------------------------------------------------------------------- */

static char plan_buf[MAX_PLAN + 1];
static char *items[MAX_ITEMS];
static int n_items;

static void read_plan(void) {
  size_t len = 0;
  for (;;) {
    ssize_t n = read(PLAN_FD, plan_buf + len, MAX_PLAN - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("reading the plan");
    if (n == 0) break;
    len += (size_t)n;
    if (len == MAX_PLAN) { errno = 0; fail("plan larger than %d bytes", MAX_PLAN); }
  }
  close(PLAN_FD);
  if (len == 0 || plan_buf[len - 1] != '\0') { errno = 0; fail("plan is empty or not NUL-terminated"); }
  for (size_t i = 0; i < len; i += strlen(plan_buf + i) + 1) {
    if (n_items == MAX_ITEMS) { errno = 0; fail("plan has more than %d strings", MAX_ITEMS); }
    items[n_items++] = plan_buf + i;
  }
}

/* Each op has a fixed arity (table below). */
static const struct { const char *name; int arity; } OPS[] = {
    {"uid", 2},     {"gid", 2},      {"host", 1},   {"tmpfs", 2}, {"dir", 2},  {"bind", 3},     {"proc", 1},
    {"devpts", 1},  {"symlink", 2},  {"file", 3},   {"relay", 2}, {"ll", 2},   {"llhandle", 3}, {"llnet", 2},
    {"degraded", 1}, {"seccomp", 1}, {"cwd", 1},    {"env", 1},   {"argv", 1},
};

static int op_arity(const char *name) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (strcmp(OPS[i].name, name) == 0) return OPS[i].arity;
  return -1;
}

/* Checks every op's name and arity once, up front: a bad plan fails before anything is changed. */
static void validate_plan(void) {
  for (int i = 0; i < n_items;) {
    int arity = op_arity(items[i]);
    if (arity < 0) { errno = 0; fail("unknown plan op '%.40s'", items[i]); }
    if (i + arity >= n_items) { errno = 0; fail("plan op '%s' is missing arguments", items[i]); }
    i += arity + 1;
  }
}

/* Calls fn(args) for every op named `name`, in plan order. */
static void each(const char *name, void (*fn)(char **args)) {
  for (int i = 0; i < n_items; i += op_arity(items[i]) + 1)
    if (strcmp(items[i], name) == 0) fn(items + i + 1);
}

static unsigned long long num(const char *s, int base) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno != 0 || *s == '\0' || *end != '\0') { errno = 0; fail("not a number: '%.40s'", s); }
  return v;
}

/* ---- user namespace ---------------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) fail("writing %s", path);
  close(fd);
}

static char uid_line[64], gid_line[64];
static void op_uid(char **a) { snprintf(uid_line, sizeof uid_line, "%llu %llu 1\n", num(a[0], 10), num(a[1], 10)); }
static void op_gid(char **a) { snprintf(gid_line, sizeof gid_line, "%llu %llu 1\n", num(a[0], 10), num(a[1], 10)); }

/* One uid and one gid mapped; setgroups denied, so the agent can never drop a supplementary group to gain access. */
static void enter_user_namespace(void) {
  each("uid", op_uid);
  each("gid", op_gid);
  if (uid_line[0] == '\0' || gid_line[0] == '\0') { errno = 0; fail("plan has no uid/gid map"); }
  if (unshare(CLONE_NEWUSER) != 0) fail("user namespaces are unavailable (enable them: sysctl user.max_user_namespaces, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu); unshare(CLONE_NEWUSER)");
  write_file("/proc/self/setgroups", "deny");
  write_file("/proc/self/uid_map", uid_line);
  write_file("/proc/self/gid_map", gid_line);
  if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) fail("unshare(namespaces)");
}

/* ---- the root filesystem ----------------------------------------------------------------------------------- */

/* Staging: the old root is at /oldroot and the new one, a tmpfs, at /newroot (both inside a private tmpfs). */
static char path_b[4096];
static const char *in_old(const char *src) { snprintf(path_b, sizeof path_b, "/oldroot%s", src); return path_b; }

/*
 * Everything below /newroot is made and entered by descriptor, never by a path name. Mount points lie inside trees an
 * agent writes (its private home is bound at $HOME, and the workspace and the profile's and lattice's own mounts
 * often lie below it), and another session of the same profile may be running in that home right now. So each
 * component of a destination is looked up alone in its parent's descriptor with symlinks refused (openat2
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS; on a kernel without openat2, openat with O_NOFOLLOW, which for one component
 * is the same lookup), made with mkdirat or O_CREAT|O_EXCL where missing (neither follows a link), and what is mounted
 * is attached to the final descriptor. A component renamed or swapped for a link after its lookup changes nothing:
 * the next one is looked up in the directory the descriptor holds. Nothing is created outside the new root, and no
 * mount lands anywhere but where the plan says.
 */
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#define MOVE_MOUNT_F_EMPTY_PATH 0x04
#define MOVE_MOUNT_T_EMPTY_PATH 0x40
#define MOUNT_ATTR_RDONLY 0x01
#define MOUNT_ATTR_NOSUID 0x02
#define MOUNT_ATTR_NODEV 0x04
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
struct open_how_v0 { uint64_t flags, mode, resolve; };     /* struct open_how (openat2, Linux 5.6) */
struct mount_attr_v0 { uint64_t attr_set, attr_clr, propagation, userns_fd; }; /* struct mount_attr (5.12) */

static int newroot_fd = -1;

/* One name looked up in dirfd, a symlink refused: ELOOP (openat2), or an O_PATH descriptor of the link (O_NOFOLLOW),
 * which the caller's fstat refuses. */
static int open_component(int dirfd, const char *name, int flags) {
  static int no_openat2;
  if (!no_openat2) {
    struct open_how_v0 how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return fd;
    no_openat2 = 1;
  }
  return openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW);
}

enum want { WANT_DIR, WANT_FILE };

/* The component `name` of `dst` (its first `upto` bytes name it in messages) in dirfd, made when missing with `mode`:
 * an O_PATH descriptor of a directory (WANT_DIR) or of anything but one (WANT_FILE, made as an empty file). */
static int step(int dirfd, const char *name, enum want want, mode_t mode, const char *dst, int upto) {
  int fd = open_component(dirfd, name, O_PATH);
  if (fd < 0 && errno == ENOENT) {
    if (want == WANT_DIR) {
      if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST) fail("mkdir %.*s", upto, dst);
    } else {
      int made = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      if (made < 0 && errno != EEXIST) fail("creating %.*s", upto, dst);
      if (made >= 0) close(made);
    }
    fd = open_component(dirfd, name, O_PATH);
  }
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) != 0) fail("stat %.*s", upto, dst);
  if ((fd < 0 && errno == ELOOP) || (fd >= 0 && S_ISLNK(st.st_mode))) {
    errno = ELOOP;
    fail("%.*s is a symbolic link, which lattice does not follow where it builds the sandbox (remove it)", upto, dst);
  }
  if (fd < 0) fail("%.*s", upto, dst);
  if ((want == WANT_DIR) != (S_ISDIR(st.st_mode) != 0)) {
    errno = want == WANT_DIR ? ENOTDIR : EISDIR;
    fail("%.*s", upto, dst);
  }
  return fd;
}

/* An O_PATH descriptor of `dst` (absolute, inside the new root), made as needed: directories, and the last component
 * a directory with `mode` or an empty file. */
static int walk(const char *dst, enum want want, mode_t mode) {
  char buf[4096];
  if (dst[0] != '/' || strlen(dst) >= sizeof buf) { errno = 0; fail("not an absolute path: '%.80s'", dst); }
  strcpy(buf, dst);
  int fd = fcntl(newroot_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) fail("dup");
  char *save = NULL;
  char *name = strtok_r(buf + 1, "/", &save);
  while (name != NULL) {
    char *next = strtok_r(NULL, "/", &save);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { errno = 0; fail("not a normalized path: '%.80s'", dst); }
    int upto = (int)(name - buf) + (int)strlen(name);
    int child = step(fd, name, next == NULL ? want : WANT_DIR, next == NULL ? mode : 0755, dst, upto);
    close(fd);
    fd = child;
    name = next;
  }
  return fd;
}

/* The parent directory of `dst` (made as needed) and the last component's name, for ops that create an entry. */
static int walk_parent(const char *dst, char *name, size_t size) {
  const char *slash = strrchr(dst, '/');
  if (slash == NULL || slash[1] == '\0' || strlen(slash + 1) >= size) { errno = 0; fail("not a file path: '%.80s'", dst); }
  snprintf(name, size, "%s", slash + 1);
  char parent[4096];
  snprintf(parent, sizeof parent, "%.*s", slash == dst ? 1 : (int)(slash - dst), dst);
  return walk(parent, WANT_DIR, 0755);
}

/* A new filesystem (tmpfs, proc, devpts) on the directory `dst`: mounted on "." after fchdir to its descriptor, so the
 * target is the directory that was walked to, not a name looked up again. */
static void mount_fresh(const char *dst, const char *type, unsigned long flags, const char *opts, mode_t mode) {
  int fd = walk(dst, WANT_DIR, mode);
  if (fchdir(fd) != 0 || mount(type, ".", type, flags, opts) != 0) fail("mount %s on %s", type, dst);
  if (chdir("/") != 0) fail("chdir /");
  close(fd);
}

static void op_tmpfs(char **a) {
  char opts[64];
  snprintf(opts, sizeof opts, "mode=%s", a[1]);
  mount_fresh(a[0], "tmpfs", MS_NOSUID | MS_NODEV, opts, 0755);
}

static void op_dir(char **a) { close(walk(a[0], WANT_DIR, (mode_t)num(a[1], 8))); }

/* bind SRC DST MODE: MODE is ro, rw or dev (a device node: keeps device access, still nosuid). Not recursive: mounts
 * below SRC on the host stay out. A detached copy of SRC (open_tree) gets its flags (mount_setattr; flags the source
 * has and the kernel locks, such as nosuid, noexec or atime, are kept because none is cleared), then is attached to
 * the walked mount point's descriptor (move_mount), and the flags are read back. */
static void op_bind(char **a) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, in_old(a[0]), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  struct stat st;
  if (tree < 0 && errno == ENOSYS) fail("the sandbox needs Linux 5.12 or later (open_tree, mount_setattr, move_mount)");
  if (tree < 0 || fstat(tree, &st) != 0) fail("bind source %s", a[0]);
  int dev = strcmp(a[2], "dev") == 0, ro = strcmp(a[2], "ro") == 0;
  struct mount_attr_v0 attr = {.attr_set = MOUNT_ATTR_NOSUID | (dev ? 0 : MOUNT_ATTR_NODEV) | (ro ? MOUNT_ATTR_RDONLY : 0)};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    if (errno == ENOSYS) fail("the sandbox needs Linux 5.12 or later (mount_setattr)");
    fail("mount flags for %s (%s)", a[1], a[2]);
  }
  int point = walk(a[1], S_ISDIR(st.st_mode) ? WANT_DIR : WANT_FILE, S_ISDIR(st.st_mode) ? 0755 : 0644);
  if (syscall(SYS_move_mount, tree, "", point, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) fail("bind %s on %s", a[0], a[1]);
  struct statvfs sv;
  if (fstatvfs(tree, &sv) != 0) fail("statvfs %s", a[1]);
  unsigned long want = ST_NOSUID | (dev ? 0 : ST_NODEV) | (ro ? ST_RDONLY : 0);
  if ((sv.f_flag & want) != want) { errno = 0; fail("%s is mounted without the flags it needs (%s)", a[1], a[2]); }
  close(point);
  close(tree);
}

static void op_proc(char **a) { mount_fresh(a[0], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555); }

/* A private devpts instance: the agent sees only the terminals it opens itself, never the host's. */
static void op_devpts(char **a) { mount_fresh(a[0], "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", 0755); }

static void op_symlink(char **a) {
  char name[256];
  int dir = walk_parent(a[1], name, sizeof name);
  if (symlinkat(a[0], dir, name) != 0 && errno != EEXIST) fail("symlink %s", a[1]);
  close(dir);
}

static void op_file(char **a) {
  char name[256];
  int dir = walk_parent(a[0], name, sizeof name);
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)num(a[1], 8));
  size_t len = strlen(a[2]);
  if (fd < 0 || write(fd, a[2], len) != (ssize_t)len) fail("writing %s", a[0]);
  close(fd);
  close(dir);
}

static void build_root(void) {
  /* Nothing done here propagates back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("making / private");
  /* A private tmpfs on /tmp (this namespace only) holds /oldroot and /newroot while the root is assembled. */
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k") != 0) fail("staging tmpfs");
  if (chdir("/tmp") != 0 || mkdir("oldroot", 0700) != 0 || mkdir("newroot", 0755) != 0) fail("staging dirs");
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) fail("pivot_root into staging");
  if (chdir("/") != 0) fail("chdir /");
  if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) fail("root tmpfs");
  newroot_fd = open("/newroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (newroot_fd < 0) fail("open /newroot");
  /* The filesystem ops run in plan order (a mount point may lie inside an earlier mount). */
  static const struct { const char *name; void (*fn)(char **); } FS_OPS[] = {
      {"tmpfs", op_tmpfs}, {"dir", op_dir}, {"bind", op_bind}, {"proc", op_proc},
      {"devpts", op_devpts}, {"symlink", op_symlink}, {"file", op_file},
  };
  for (int i = 0; i < n_items; i += op_arity(items[i]) + 1)
    for (size_t k = 0; k < sizeof FS_OPS / sizeof FS_OPS[0]; k++)
      if (strcmp(items[i], FS_OPS[k].name) == 0) FS_OPS[k].fn(items + i + 1);
  /* Final pivot: the new root becomes /, and the staging tmpfs with the old root under it is detached. */
  close(newroot_fd);
  if (chdir("/newroot") != 0 || syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root into the new root");
  if (umount2(".", MNT_DETACH) != 0) fail("detaching the old root");
  if (chdir("/") != 0) fail("chdir /");
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) fail("read-only root");
}

static void op_host(char **a) {
  if (sethostname(a[0], strlen(a[0])) != 0) fail("sethostname");
}

/* The new network namespace has only `lo`, and it starts down. */
static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("reading lo flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("bringing lo up");
  close(s);
}

/* ---- relays: 127.0.0.1:PORT inside -> a unix socket of lattice's, bind-mounted in ---------------------------- */

static void drop_all_caps(void) {
  struct { uint32_t version; int pid; } hdr = {0x20080522, 0}; /* _LINUX_CAPABILITY_VERSION_3 */
  struct { uint32_t effective, permitted, inheritable; } data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) != 0) fail("dropping capabilities");
}

/* Copies bytes both ways until both directions have ended. */
static void pump(int a, int b) {
  struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  char buf[65536];
  int open_dirs = 2;
  while (open_dirs > 0) {
    if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; return; }
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      int out = i == 0 ? b : a;
      if (n <= 0) { shutdown(out, SHUT_WR); p[i].fd = -1; open_dirs--; continue; }
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(out, buf + off, (size_t)(n - off));
        if (w <= 0) return;
        off += w;
      }
    }
  }
}

static void op_relay(char **a) {
  int port = (int)num(a[0], 10);
  const char *target = a[1];
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 128) != 0) fail("relay listen on %d", port);
  pid_t pid = fork();
  if (pid < 0) fail("fork relay");
  if (pid > 0) { close(ls); return; }
  /* The relay: no capabilities, no status pipe, children reaped automatically. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  close(STATUS_FD);
  close(GO_FD);
  drop_all_caps();
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (fork() == 0) {
      close(ls);
      struct sockaddr_un un = {.sun_family = AF_UNIX};
      snprintf(un.sun_path, sizeof un.sun_path, "%s", target);
      int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (u >= 0 && connect(u, (struct sockaddr *)&un, sizeof un) == 0) pump(c, u);
      _exit(0);
    }
    close(c);
  }
}

/* ---- Landlock and seccomp, applied by the agent's process just before execve -------------------------------- */

static int ll_abi;
static int ll_fd = -1;
static uint64_t ll_fs, ll_net, ll_scope;

/* Rights each ABI knows (ABI 1: fs bits 0-12; 2: refer; 3: truncate; 4: tcp; 5: ioctl_dev; 6: scopes). */
static uint64_t fs_known(void) { return ll_abi >= 5 ? 0xFFFF : ll_abi >= 3 ? 0x7FFF : ll_abi >= 2 ? 0x3FFF : 0x1FFF; }

static void op_llhandle(char **a) {
  ll_fs = num(a[0], 16) & fs_known();
  ll_net = ll_abi >= 4 ? num(a[1], 16) & 3 : 0;
  ll_scope = ll_abi >= 6 ? num(a[2], 16) & 3 : 0;
}

/* The rule is for the path the plan names: a symlink on the way (one an agent put in its home) fails the run rather
 * than moving the rule to wherever it points. Landlock needs Linux 5.13, so openat2 (5.6) is there. */
static void op_ll(char **a) {
  struct open_how_v0 how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, a[0], &how, sizeof how);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) fail("landlock rule for %s", a[0]);
  uint64_t rights = num(a[1], 16) & ll_fs;
  if (!S_ISDIR(st.st_mode)) rights &= LL_FS_FILE_RIGHTS;
  struct ll_path_beneath rule = {.allowed_access = rights, .parent_fd = fd};
  if (rights != 0 && syscall(SYS_landlock_add_rule, ll_fd, LL_RULE_PATH_BENEATH, &rule, 0) != 0) fail("landlock rule for %s", a[0]);
  close(fd);
}

static void op_llnet(char **a) {
  struct ll_net_port rule = {.allowed_access = num(a[1], 16) & ll_net, .port = num(a[0], 10)};
  if (rule.allowed_access != 0 && syscall(SYS_landlock_add_rule, ll_fd, LL_RULE_NET_PORT, &rule, 0) != 0) fail("landlock port %s", a[0]);
}

static int degraded;
static void op_degraded(char **a) { degraded = strcmp(a[0], "1") == 0; }

static void apply_landlock(void) {
  if (ll_abi <= 0) {
    if (degraded) return;
    errno = 0;
    fail("Landlock is unavailable on this kernel (needs Linux 5.13+ with landlock in the LSM list); pass --allow-degraded to run without it");
  }
  each("llhandle", op_llhandle);
  /* Fields an older kernel does not know are zero (masked above), which it accepts in a larger struct. */
  struct ll_ruleset_attr attr = {ll_fs, ll_net, ll_scope};
  ll_fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ll_fd < 0) fail("landlock_create_ruleset");
  each("ll", op_ll);
  each("llnet", op_llnet);
  if (syscall(SYS_landlock_restrict_self, ll_fd, 0) != 0) fail("landlock_restrict_self");
  close(ll_fd);
}

static unsigned char hexval(char c) {
  if (c >= '0' && c <= '9') return (unsigned char)(c - '0');
  if (c >= 'a' && c <= 'f') return (unsigned char)(c - 'a' + 10);
  errno = 0;
  fail("bad hex in the seccomp program");
}

static struct sock_filter filter[4096];
static unsigned short filter_len;
static void op_seccomp(char **a) {
  size_t len = strlen(a[0]);
  if (len % 16 != 0 || len / 16 > 4096) { errno = 0; fail("seccomp program length"); }
  unsigned char *bytes = (unsigned char *)filter;
  for (size_t i = 0; i < len / 2; i++) bytes[i] = (unsigned char)(hexval(a[0][2 * i]) << 4 | hexval(a[0][2 * i + 1]));
  filter_len = (unsigned short)(len / 16);
}

static void apply_seccomp(void) {
  each("seccomp", op_seccomp);
  if (filter_len == 0) { errno = 0; fail("plan has no seccomp program"); }
  struct sock_fprog prog = {.len = filter_len, .filter = filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) fail("installing the seccomp filter");
}

/* ---- the agent --------------------------------------------------------------------------------------------- */

static char *agent_env[MAX_ITEMS], *agent_argv[MAX_ITEMS];
static int n_env, n_argv;
static const char *agent_cwd = "/";
static void op_env(char **a) { agent_env[n_env++] = a[0]; }
static void op_argv(char **a) { agent_argv[n_argv++] = a[0]; }
static void op_cwd(char **a) { agent_cwd = a[0]; }

static void __attribute__((noreturn)) exec_agent(void) {
  each("env", op_env);
  each("argv", op_argv);
  each("cwd", op_cwd);
  if (n_argv == 0) { errno = 0; fail("plan has no command"); }
  if (chdir(agent_cwd) != 0) fail("chdir %s", agent_cwd);
  /* Capabilities: none in the bounding or ambient sets, and none regained through execve (no_new_privs). */
  for (int cap = 0; cap <= 63; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
  each("degraded", op_degraded);
  apply_landlock();
  apply_seccomp();
  environ = agent_env;
  dprintf(STATUS_FD, "ready\n");
  char go = 0;
  while (read(GO_FD, &go, 1) < 0 && errno == EINTR) continue;
  if (go != 'g') _exit(125); /* lattice could not put the start on record: the command never runs */
  execvp(agent_argv[0], agent_argv); /* STATUS_FD and GO_FD are close-on-exec: lattice sees EOF on success */
  int saved = errno;
  dprintf(STATUS_FD, "error cannot run %s inside the sandbox: %s\n", agent_argv[0], strerror(saved));
  dprintf(2, "%s: cannot run %s: %s\n", status_prefix, agent_argv[0], strerror(saved));
  _exit(saved == ENOENT ? 127 : 126);
}

/* ---- PID 1 and the outer waiter: signals and exit status --------------------------------------------------- */

static volatile pid_t forward_to;

/* Forwards signals someone sent with kill(); those the terminal raises (SI_KERNEL) already reach the agent, which
 * shares the terminal's foreground process group, and forwarding them would deliver them twice. */
static void forward(int sig, siginfo_t *info, void *ctx) {
  (void)ctx;
  if (forward_to > 0 && info->si_code <= 0) kill(forward_to, sig);
}

static void forward_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

static int status_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

/* Waits for `child`, reaping every other process that ends meanwhile (PID 1's duty), and returns its status. */
static int wait_for(pid_t child) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) return 125;
    if (pid == child) return status_code(status);
  }
}

static int alive_pipe[2]; /* the outer helper holds the write end: EOF means it is gone */

static void __attribute__((noreturn)) init_main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  close(alive_pipe[1]);
  struct pollfd p = {alive_pipe[0], POLLIN, 0};
  if (poll(&p, 1, 0) > 0) _exit(125); /* the outer helper died before PDEATHSIG was armed */
  status_prefix = "lattice-sandbox (init)";
  each("host", op_host);
  build_root();
  loopback_up();
  each("relay", op_relay);
  forward_signals();
  pid_t agent = fork();
  if (agent < 0) fail("fork agent");
  if (agent == 0) {
    signal(SIGCHLD, SIG_DFL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &dfl, NULL);
    exec_agent();
  }
  forward_to = agent;
  close(STATUS_FD);
  close(GO_FD);
  drop_all_caps();
  _exit(wait_for(agent));
}

/*
 * `lattice-sandbox --probe` (for `lattice doctor`): what this kernel offers, one line each, then exit 0.
 *   landlock <abi>            0 when Landlock is unavailable
 *   userns ok | <errno name>  whether this user may create a user namespace (tried in a child that then exits)
 *   seccomp ok | <errno name> whether a filter can be installed (PR_GET_SECCOMP answers)
 *   clock synced | unsynced   the kernel's NTP status (adjtimex: TIME_ERROR means not synchronised)
 */
static int probe(void) {
  int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_VERSION);
  printf("landlock %d\n", abi > 0 ? abi : 0);
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0x7f) + 1);
  int st = 0;
  if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st)) printf("userns %s\n", strerror(child < 0 ? errno : ECHILD));
  else if (WEXITSTATUS(st) == 0) printf("userns ok\n");
  else printf("userns %s\n", strerror(WEXITSTATUS(st) - 1));
  printf("seccomp %s\n", prctl(PR_GET_SECCOMP) >= 0 ? "ok" : strerror(errno));
  struct timex tx = {0};
  printf("clock %s\n", adjtimex(&tx) == TIME_ERROR ? "unsynced" : "synced");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) return probe();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) _exit(125); /* lattice already exited */
  if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) != 0 || fcntl(GO_FD, F_SETFD, FD_CLOEXEC) != 0 || fcntl(PLAN_FD, F_GETFD) < 0) {
    dprintf(2, "%s: run by lattice only (expects the plan on fd 3, a status pipe on fd 4 and the go on fd 5)\n", status_prefix);
    return 125;
  }
  /* The kernel's Landlock ABI, first, so lattice can put it on record while the namespaces are built. */
  ll_abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_VERSION);
  dprintf(STATUS_FD, "landlock %d\n", ll_abi > 0 ? ll_abi : 0);
  read_plan();
  validate_plan();
  enter_user_namespace();
  if (pipe2(alive_pipe, O_CLOEXEC) != 0) fail("pipe");
  /* Own process group, made the terminal's foreground group, so the terminal's ^C reaches the agent directly. */
  int tty = isatty(0);
  pid_t shell_pgrp = tty ? tcgetpgrp(0) : -1; /* only a foreground lattice hands the terminal on */
  if (tty && shell_pgrp == getpgrp() && setpgid(0, 0) == 0) {
    signal(SIGTTOU, SIG_IGN);
    tcsetpgrp(0, getpgrp());
  }
  pid_t init = fork();
  if (init < 0) fail("fork init");
  if (init == 0) init_main();
  close(alive_pipe[0]);
  close(STATUS_FD);
  close(GO_FD);
  forward_to = init;
  forward_signals();
  int code = wait_for(init);
  if (tty && shell_pgrp > 0) tcsetpgrp(0, shell_pgrp);
  return code;
}
