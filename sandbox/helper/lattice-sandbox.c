/*
 * lattice-sandbox: executes a sandbox plan computed by lattice (sandbox/plan.ts). It decides nothing itself.
 *
 * Why C: user namespaces cannot be unshared from a multithreaded process (Node is one), and a Node stage costs
 * ~35 ms against ~2.5 ms here. The helper is small on purpose; every step below is one plan op or one fixed step.
 *
 * Protocol. fds 0-2 are the agent's stdio; every fd above 5 is closed at once, so nothing else reaches the agent.
 *           fd 3: the plan, read to EOF (NUL-terminated strings: an op name then its arguments, see OPS below).
 *           fd 4: status lines for lattice: "landlock <abi>" first (0: none), "ready" once the agent's process
 *                 is confined and waits for the go, or "error <message>" when setup fails (exit status 125 then).
 *           fd 5: the go: lattice writes "g" once the start is on record and the agent's credential is in place;
 *                 anything else (EOF) ends the run with 125 before the agent's command runs. So the namespaces
 *                 are built while lattice enrolls the sandbox identity, and nothing runs before the evidence.
 * Process tree:  helper (outside, waits) -> init (PID 1 of the new pid namespace: reaps, forwards signals)
 *                -> relays (loopback TCP -> unix socket) and the agent.
 * Once set up, PID 1 and each relay confine themselves too: no_new_privs, a Landlock domain of their own with no
 * filesystem access and no TCP bind or connect, and a seccomp allowlist of the calls they still make (the plan's
 * seccomp-init and seccomp-relay programs); they never execve, so nothing they start escapes it.
 * Exit status: the agent's, or 128+n when a signal ended it. Every process dies with its parent (PDEATHSIG), and
 * when init exits the kernel kills whatever is left in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/openat2.h>
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "helper.h"

#define PLAN_FD 3
#define GO_FD 5
#define MAX_PLAN (1 << 20)

/* Landlock ABI (Debian 12's headers stop at ABI 2, so the constants are ours). */
struct ll_ruleset_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct ll_path_beneath { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
struct ll_net_port { uint64_t allowed_access; uint64_t port; };
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_CREATE_VERSION 1U
#define LL_FS_FILE_RIGHTS 0xC007ULL /* execute, write_file, read_file, truncate, ioctl_dev: the rights a file takes */

extern char **environ;

const char *status_prefix = "lattice-sandbox";

/* Report a setup failure to lattice (fd 4) and stderr, then exit 125 (distinct from any agent status). */
void fail(const char *fmt, ...) {
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
char *items[MAX_ITEMS];
int n_items;

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
    {"degraded", 1}, {"seccomp", 1}, {"seccomp-init", 1}, {"seccomp-relay", 1}, {"cwd", 1}, {"env", 1}, {"argv", 1},
    {"rebind", 2},  {"mask", 1},     {"protect", 2}, {"repo", 2},  {"repo-writable", 1}, {"repo-mask", 3},
};

int op_arity(const char *name) {
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
void each(const char *name, void (*fn)(char **args)) {
  for (int i = 0; i < n_items; i += op_arity(items[i]) + 1)
    if (strcmp(items[i], name) == 0) fn(items + i + 1);
}

unsigned long long num(const char *s, int base) {
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

#define LL_SCOPE_ABSTRACT_UNIX 1ULL
#define LL_SCOPE_SIGNAL 2ULL
static void confine_self(const char *program_op, uint64_t scope);

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
  /* It reads bytes the agent wrote: from here on it may accept, fork, reach lattice's unix socket and copy bytes. */
  confine_self("seccomp-relay", LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL);
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
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
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

/* Installs the program of the plan op `name` (the agent's "seccomp", or the helper's own) on this process. */
static void apply_seccomp(const char *name) {
  filter_len = 0;
  each(name, op_seccomp);
  if (filter_len == 0) { errno = 0; fail("plan has no %s program", name); }
  struct sock_fprog prog = {.len = filter_len, .filter = filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) fail("installing the %s filter", name);
}

/* PID 1 and the relays, once set up: a Landlock domain of their own that handles every right the kernel knows and
 * grants none (no file opened, no TCP bound or connected; their sockets are open already), with `scope`; then
 * their seccomp allowlist. Without Landlock only the seccomp part applies: the agent's own apply_landlock refuses
 * to run then unless --allow-degraded. They never execve, so no_new_privs costs them nothing. */
static void confine_self(const char *program_op, uint64_t scope) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs for %s", program_op);
  if (ll_abi > 0) {
    struct ll_ruleset_attr attr = {fs_known(), ll_abi >= 4 ? 3 : 0, ll_abi >= 6 ? scope : 0};
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (fd < 0) fail("landlock_create_ruleset for %s", program_op);
    if (syscall(SYS_landlock_restrict_self, fd, 0) != 0) fail("landlock_restrict_self for %s", program_op);
    close(fd);
  }
  apply_seccomp(program_op);
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
  apply_seccomp("seccomp");
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
  close(GO_FD);
  drop_all_caps();
  /* Forked before this, the agent has its own domain and program. No signal scope here: PID 1 signals the agent,
   * which is outside its domain. A failure is reported on the status pipe, so it is closed only afterwards. */
  confine_self("seccomp-init", LL_SCOPE_ABSTRACT_UNIX);
  close(STATUS_FD);
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
  /* Nothing else lattice's process held reaches the agent: whatever was open without close-on-exec when lattice
   * started (a socket to a host service, a host file, a directory of the host) would otherwise be the agent's fd. */
  if (close_range(GO_FD + 1, ~0U, 0) != 0) fail("closing inherited file descriptors (close_range)");
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
