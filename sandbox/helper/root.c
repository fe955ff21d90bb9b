/*
 * The root filesystem the agent sees: a tmpfs assembled from the plan's filesystem ops, in plan order, then made
 * the root with pivot_root. Runs in PID 1 of the new namespaces, before the agent exists.
 *
 * Some trees mounted here are ones an agent can write: the workspace, the private home, --rw-mount paths. An agent
 * of another session (same workspace, or same profile and so the same private home) may be changing them while
 * this runs. So no path is resolved by name: every path is opened one component at a time with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from a directory fd, which refuses a link (the error names it) and a
 * ".." instead of following them, whatever is swapped in meanwhile. Mount points are made with mkdirat/mknodat on
 * those fds, and mounts are attached fd to fd (open_tree + move_mount, fsopen + fsmount), so what was opened and
 * checked is exactly what is mounted. Every new mount is nosuid and nodev (but for device nodes, read-only), set with
 * mount_setattr, which only adds flags (what the host locked, e.g. noexec, stays), and read back with fstatvfs.
 *
 * Fail closed: a step that cannot be done as planned ends the run (exit 125) before the agent starts.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "helper.h"

#define MAX_PATH 4096

static int old_root = -1; /* the host's root (at /oldroot while the new one is built): where bind sources are */
static int new_root = -1; /* the new root's tmpfs: where mount points are made */

/* ---- paths, one component at a time ------------------------------------------------------------------------ */

/* One step: NAME beneath DIR, no link followed, no "..", no absolute path (glibc has no openat2 wrapper). */
static int open_step(int dir, const char *name, int flags) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
  return (int)syscall(SYS_openat2, dir, name, &how, sizeof how);
}

enum make { FIND, MAKE_DIR, MAKE_FILE };

/*
 * Opens PATH beneath DIR one component at a time (leading slashes ignored; "" is DIR itself). FLAGS apply to the
 * last component; the others are opened O_PATH | O_DIRECTORY. With MAKE_DIR or MAKE_FILE a missing component is
 * made (directories 0755, the last a directory of MODE or an empty file); one that exists is used as it is, so a
 * link there is refused by the open that follows. Returns the fd, or -1 with errno set and *failed = the length
 * of PATH up to the end of the component that failed (so "%.*s" names it).
 */
static int walk(int dir, const char *path, int flags, enum make make, mode_t mode, size_t *failed) {
  char buf[MAX_PATH];
  *failed = strlen(path);
  if (*failed >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, *failed + 1);
  char *name = buf;
  while (*name == '/') name++;
  if (*name == '\0') return open_step(dir, ".", flags);
  int cur = dir;
  for (;;) {
    char *next = strchr(name, '/');
    if (next != NULL) {
      *next++ = '\0';
      while (*next == '/') next++;
    }
    int last = next == NULL || *next == '\0';
    int made = 0;
    if (make != FIND && (!last || make == MAKE_DIR)) made = mkdirat(cur, name, last ? mode : 0755);
    else if (make == MAKE_FILE && last) made = mknodat(cur, name, S_IFREG | 0644, 0);
    int fd = made != 0 && errno != EEXIST ? -1 : open_step(cur, name, last ? flags : O_PATH | O_DIRECTORY);
    int saved = errno;
    if (cur != dir) close(cur);
    errno = saved;
    if (fd < 0) {
      *failed = (size_t)(name - buf) + strlen(name);
      return -1;
    }
    if (last) return fd;
    cur = fd;
    name = next;
  }
}

/* Ends the run for a path walk() could not open, naming the component; a link gets its own explanation. */
static void __attribute__((noreturn)) refuse_path(const char *what, const char *path, size_t failed) {
  if (errno == ELOOP)
    fail("%s: %.*s is a symbolic link, and lattice follows no link there (remove the link, or the path from the profile)", what, (int)failed, path);
  fail("%s: %.*s", what, (int)failed, path);
}

/* The directory holding PATH's last component in the new root (made if missing); *name points at that component. */
static int parent_dir(const char *path, const char **name) {
  const char *slash = strrchr(path, '/');
  char dir[MAX_PATH];
  size_t at;
  if (slash == NULL || (size_t)(slash - path) >= sizeof dir) { errno = 0; fail("not an absolute path: '%.80s'", path); }
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  *name = slash + 1;
  int fd = walk(new_root, dir, O_PATH | O_DIRECTORY, MAKE_DIR, 0755, &at);
  if (fd < 0) refuse_path("the directory of", path, at);
  return fd;
}

/* True when FD is the root of a mount (a mount point the agent cannot rename or remove). */
static int mount_root(int fd) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, 0, &stx) != 0) fail("statx");
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* ---- mounts, fd to fd -------------------------------------------------------------------------------------- */

/* Attaches the detached mount MNT on DST and reads back what the kernel did: nosuid always, nodev unless DEV,
 * read-only exactly when RO. */
static void place(int mnt, int dst, const char *what, int ro, int dev) {
  if (move_mount(mnt, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) fail("mount on %s", what);
  struct statvfs sv;
  if (fstatvfs(mnt, &sv) != 0) fail("reading back the mount on %s", what);
  if (!!(sv.f_flag & ST_RDONLY) != ro) {
    errno = ro ? EPERM : EROFS;
    fail("%s is mounted %s, not as planned", what, ro ? "read-write" : "read-only");
  }
  if (!(sv.f_flag & ST_NOSUID) || (!dev && !(sv.f_flag & ST_NODEV))) {
    errno = EPERM;
    fail("%s is mounted without nosuid/nodev", what);
  }
}

/* Mounts a copy of the mount at SRC (that object, nothing mounted below it) on DST. MODE: ro, rw, or dev (a device
 * node: device access kept, and always read-only: the node is the host's inode, and a read-only mount is what keeps
 * the agent (its owner, when run as root) from changing its mode, owner or times there, which Landlock does not
 * govern; reads and writes of the device itself work on a read-only mount). Returns the new mount's fd (paths opened
 * beneath it are in the new mount). */
static int attach(int src, int dst, const char *what, const char *mode) {
  int dev = strcmp(mode, "dev") == 0, ro = dev || strcmp(mode, "ro") == 0;
  int tree = open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree < 0) fail("bind %s", what);
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | (dev ? 0 : MOUNT_ATTR_NODEV) | (ro ? MOUNT_ATTR_RDONLY : 0)};
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) fail("mount flags for %s (%s)", what, mode);
  place(tree, dst, what, ro, dev);
  return tree;
}

/* A new filesystem of TYPE on DST. OPTIONS: "key=value" or "flag" strings, NULL-terminated; ATTRS: MOUNT_ATTR_*. */
static void new_fs(const char *type, const char *const *options, unsigned int attrs, int dst, const char *what) {
  int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) fail("%s for %s", type, what);
  for (const char *const *o = options; *o != NULL; o++) {
    char key[64];
    const char *eq = strchr(*o, '=');
    snprintf(key, sizeof key, "%.*s", eq == NULL ? (int)strlen(*o) : (int)(eq - *o), *o);
    int r = eq == NULL ? fsconfig(fs, FSCONFIG_SET_FLAG, key, NULL, 0) : fsconfig(fs, FSCONFIG_SET_STRING, key, eq + 1, 0);
    if (r != 0) fail("%s option %s for %s", type, *o, what);
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) fail("%s for %s", type, what);
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0) fail("%s for %s", type, what);
  close(fs);
  place(mnt, dst, what, !!(attrs & MOUNT_ATTR_RDONLY), !(attrs & MOUNT_ATTR_NODEV));
  close(mnt);
}

/* ---- the plan's filesystem ops ----------------------------------------------------------------------------- */

/* tmpfs DST MODE */
static void op_tmpfs(char **a) {
  size_t at;
  int dst = walk(new_root, a[0], O_PATH | O_DIRECTORY, MAKE_DIR, 0755, &at);
  if (dst < 0) refuse_path("tmpfs mount point", a[0], at);
  char mode[32];
  snprintf(mode, sizeof mode, "mode=%s", a[1]);
  const char *options[] = {mode, NULL};
  new_fs("tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, dst, a[0]);
  close(dst);
}

/* dir DST MODE */
static void op_dir(char **a) {
  size_t at;
  int fd = walk(new_root, a[0], O_PATH | O_DIRECTORY, MAKE_DIR, (mode_t)num(a[1], 8), &at);
  if (fd < 0) refuse_path("directory", a[0], at);
  close(fd);
}

/* bind SRC DST MODE: the host's SRC (opened beneath the old root, no link followed) on DST. Not recursive: mounts
 * below SRC on the host stay out. The mount point is made to match the source (directory or file). */
static void op_bind(char **a) {
  size_t at;
  int src = walk(old_root, a[0], O_PATH, FIND, 0, &at);
  if (src < 0) refuse_path("bind source", a[0], at);
  struct stat st;
  if (fstat(src, &st) != 0) fail("bind source %s", a[0]);
  int dir = S_ISDIR(st.st_mode);
  int dst = walk(new_root, a[1], O_PATH | (dir ? O_DIRECTORY : 0), dir ? MAKE_DIR : MAKE_FILE, 0755, &at);
  if (dst < 0) refuse_path("mount point", a[1], at);
  close(attach(src, dst, a[1], a[2]));
  close(dst);
  close(src);
}

/* proc DST: this pid namespace's own /proc. */
static void op_proc(char **a) {
  size_t at;
  int dst = walk(new_root, a[0], O_PATH | O_DIRECTORY, MAKE_DIR, 0555, &at);
  if (dst < 0) refuse_path("proc mount point", a[0], at);
  const char *options[] = {NULL};
  new_fs("proc", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, dst, a[0]);
  close(dst);
}

/* devpts DST: a private instance, so the agent sees only the terminals it opens itself, never the host's. */
static void op_devpts(char **a) {
  size_t at;
  int dst = walk(new_root, a[0], O_PATH | O_DIRECTORY, MAKE_DIR, 0755, &at);
  if (dst < 0) refuse_path("devpts mount point", a[0], at);
  const char *options[] = {"newinstance", "ptmxmode=0666", "mode=0620", NULL};
  new_fs("devpts", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, dst, a[0]);
  close(dst);
}

/* symlink TARGET DST */
static void op_symlink(char **a) {
  const char *name;
  int dir = parent_dir(a[1], &name);
  if (symlinkat(a[0], dir, name) != 0 && errno != EEXIST) fail("symlink %s", a[1]);
  close(dir);
}

/* file DST MODE CONTENT: a new file (O_EXCL: never one that exists, never through a link). */
static void op_file(char **a) {
  const char *name;
  int dir = parent_dir(a[0], &name);
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)num(a[1], 8));
  size_t len = strlen(a[2]);
  if (fd < 0 || write(fd, a[2], len) != (ssize_t)len) fail("writing %s", a[0]);
  close(fd);
  close(dir);
}

/* rebind DST MODE: the object at DST in the new root, when there, bound over itself (e.g. /proc/sys read-only). */
static void op_rebind(char **a) {
  size_t at;
  int fd = walk(new_root, a[0], O_PATH, FIND, 0, &at);
  if (fd < 0 && errno == ENOENT) return;
  if (fd < 0) refuse_path("rebind", a[0], at);
  close(attach(fd, fd, a[0], a[1]));
  close(fd);
}

/* mask DST: when there, DST is covered (as runc masks /proc/kcore): a directory by an empty read-only tmpfs,
 * anything else by /dev/null on a read-only nodev mount, which cannot even be opened. */
static void op_mask(char **a) {
  size_t at;
  int fd = walk(new_root, a[0], O_PATH, FIND, 0, &at);
  if (fd < 0 && errno == ENOENT) return;
  if (fd < 0) refuse_path("mask", a[0], at);
  struct stat st;
  if (fstat(fd, &st) != 0) fail("mask %s", a[0]);
  if (S_ISDIR(st.st_mode)) {
    const char *options[] = {"mode=0555", "size=4k", NULL};
    new_fs("tmpfs", options, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, fd, a[0]);
  } else {
    int null = walk(old_root, "/dev/null", O_PATH, FIND, 0, &at);
    if (null < 0) fail("/dev/null for masking %s", a[0]);
    close(attach(null, fd, a[0], "ro"));
    close(null);
  }
  close(fd);
}

/* The workspace at WS in the new root (already bound there). */
static int workspace(const char *ws) {
  size_t at;
  int fd = walk(new_root, ws, O_PATH | O_DIRECTORY, FIND, 0, &at);
  if (fd < 0) refuse_path("the workspace", ws, at);
  return fd;
}

/*
 * protect WS REL: the workspace path REL, when there, bound read-only where it is. Each directory on the way to it
 * becomes a mount point (bound over itself, read-write) unless it is one, so the agent cannot rename it and put
 * its own in its place. A link anywhere on the way refuses the run: binding through it would protect (and show
 * inside) whatever it points at. An absent path is left absent (see SECURITY.md: protected paths).
 */
static void op_protect(char **a) {
  int ws = workspace(a[0]);
  const char *rel = a[1];
  size_t len = strlen(rel);
  char what[MAX_PATH];
  for (size_t i = 1; i <= len; i++) {
    if (i < len && rel[i] != '/') continue;
    snprintf(what, sizeof what, "%.*s", (int)i, rel);
    size_t at;
    int fd = walk(ws, what, i == len ? O_PATH : O_PATH | O_DIRECTORY, FIND, 0, &at);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) break; /* absent, or nothing can be below it */
    if (fd < 0) refuse_path("a protected path in the workspace", rel, at);
    if (i == len) close(attach(fd, fd, what, "ro"));
    else if (!mount_root(fd)) close(attach(fd, fd, what, "rw"));
    close(fd);
  }
  close(ws);
}

/* ---- the workspace's repository ---------------------------------------------------------------------------- */

static const char *repo_writable[64];
static int n_repo_writable;
static int repo_dir = -1;  /* the repository's gitdir, as mounted in the new root */
static mode_t repo_mode;    /* its permissions, which placeholders take (umask aside: a shared repository stays shared) */

static void op_repo_writable(char **a) {
  if (n_repo_writable == (int)(sizeof repo_writable / sizeof repo_writable[0])) { errno = 0; fail("too many repo-writable names"); }
  repo_writable[n_repo_writable++] = a[0];
}

/* repo-mask NAME dir|file CONTENT: made in .git when absent (O_EXCL, never through a link), so that it exists to be
 * bound read-only. Where this uid may not make it (EACCES, EPERM, EROFS), the agent, the same uid with less, may
 * not either. */
static void op_repo_mask(char **a) {
  int made;
  if (strcmp(a[1], "dir") == 0) {
    made = mkdirat(repo_dir, a[0], repo_mode);
  } else {
    int fd = openat(repo_dir, a[0], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, repo_mode & 0666);
    size_t len = strlen(a[2]);
    if (fd >= 0 && write(fd, a[2], len) != (ssize_t)len) fail("writing .git/%s", a[0]);
    if (fd >= 0) close(fd);
    made = fd >= 0 ? 0 : -1;
  }
  if (made != 0 && errno != EEXIST && errno != EACCES && errno != EPERM && errno != EROFS) fail("making .git/%s", a[0]);
}

/*
 * repo WS REL: a repository in the workspace, REL its gitdir (".git", "app/.git", a bare repository, the directory a
 * .git file names), opened one component at a time without following a link. A directory stays writable where git writes while it commits, fetches, merges and
 * rebases (the repo-writable names); everything else in it (config, hooks, commondir, modules, worktrees, info, …)
 * is bound read-only where it is, after the repo-mask names that are absent have been made, so the agent can
 * neither change nor create what makes git run commands or look elsewhere for its configuration. .git itself
 * becomes a mount point (it cannot be renamed away). A .git file (a linked worktree's pointer) is bound
 * read-only; a link refuses the run.
 */
static void op_repo(char **a) {
  int ws = workspace(a[0]);
  const char *rel = a[1];
  size_t at;
  int git = walk(ws, rel, O_PATH, FIND, 0, &at);
  close(ws);
  if (git < 0 && errno == ENOENT) return;
  if (git < 0) refuse_path("a repository in the workspace", rel, at);
  struct stat st;
  if (fstat(git, &st) != 0) fail("the repository %s", rel);
  if (!S_ISDIR(st.st_mode)) {
    close(attach(git, git, rel, "ro"));
    close(git);
    return;
  }
  int top = attach(git, git, rel, "rw");
  close(git);
  repo_dir = open_step(top, ".", O_RDONLY | O_DIRECTORY);
  if (repo_dir < 0) fail("opening the repository %s", rel);
  n_repo_writable = 0; /* the same names for every repository: each() below lists them all again */
  each("repo-writable", op_repo_writable);
  repo_mode = st.st_mode & 0777;
  mode_t umask_was = umask(0);
  each("repo-mask", op_repo_mask);
  umask(umask_was);
  DIR *d = fdopendir(dup(repo_dir));
  if (d == NULL) fail("listing the repository %s", rel);
  char what[MAX_PATH];
  for (struct dirent *e; (errno = 0, e = readdir(d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int keep = 0;
    for (int i = 0; i < n_repo_writable; i++) keep |= strcmp(e->d_name, repo_writable[i]) == 0;
    if (keep) continue;
    snprintf(what, sizeof what, "%s/%s", rel, e->d_name);
    int fd = open_step(repo_dir, e->d_name, O_PATH);
    if (fd < 0 && errno == ENOENT) continue; /* removed meanwhile: nothing left to protect */
    if (fd < 0) refuse_path("a repository in the workspace", what, strlen(what));
    close(attach(fd, fd, what, "ro"));
    close(fd);
  }
  if (errno != 0) fail("listing the repository %s", rel);
  closedir(d);
  close(repo_dir);
  close(top);
}

/* ---- assembling the root ----------------------------------------------------------------------------------- */

void build_root(void) {
  /* Nothing done here propagates back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("making / private");
  /* A private tmpfs on /tmp (this namespace only) holds /oldroot and /newroot while the root is assembled. */
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k") != 0) fail("staging tmpfs");
  if (chdir("/tmp") != 0 || mkdir("oldroot", 0700) != 0 || mkdir("newroot", 0755) != 0) fail("staging dirs");
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) fail("pivot_root into staging");
  if (chdir("/") != 0) fail("chdir /");
  if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) fail("root tmpfs");
  old_root = open("/oldroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
  new_root = open("/newroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (old_root < 0 || new_root < 0) fail("opening the staging roots");
  /* The filesystem ops run in plan order (a mount point may lie inside an earlier mount). */
  static const struct { const char *name; void (*fn)(char **); } FS_OPS[] = {
      {"tmpfs", op_tmpfs},   {"dir", op_dir},         {"bind", op_bind}, {"proc", op_proc}, {"devpts", op_devpts},
      {"symlink", op_symlink}, {"file", op_file},     {"rebind", op_rebind}, {"mask", op_mask},
      {"protect", op_protect}, {"repo", op_repo},
  };
  for (int i = 0; i < n_items; i += op_arity(items[i]) + 1)
    for (size_t k = 0; k < sizeof FS_OPS / sizeof FS_OPS[0]; k++)
      if (strcmp(items[i], FS_OPS[k].name) == 0) FS_OPS[k].fn(items + i + 1);
  /* No fd of the old root may outlive it (the agent is forked from this process). */
  close(old_root);
  close(new_root);
  /* Final pivot: the new root becomes /, and the staging tmpfs with the old root under it is detached. */
  if (chdir("/newroot") != 0 || syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root into the new root");
  if (umount2(".", MNT_DETACH) != 0) fail("detaching the old root");
  if (chdir("/") != 0) fail("chdir /");
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) fail("read-only root");
}
