/*
 * The root filesystem the agent sees: a tmpfs assembled from the plan's filesystem ops, in plan order, then made
 * the root with pivot_root. Runs in PID 1 of the new namespaces, before the agent exists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "helper.h"

/* Staging: the old root is at /oldroot and the new one, a tmpfs, at /newroot (both inside a private tmpfs). */
static char path_a[4096], path_b[4096];
static const char *in_new(const char *dst) { snprintf(path_a, sizeof path_a, "/newroot%s", dst); return path_a; }
static const char *in_old(const char *src) { snprintf(path_b, sizeof path_b, "/oldroot%s", src); return path_b; }

/* mkdir -p of a path inside the new root (each component; existing ones are fine). */
static void mkdirs(const char *path, mode_t mode) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) fail("mkdir %s", buf);
    *p = '/';
  }
  if (mkdir(buf, mode) != 0 && errno != EEXIST) fail("mkdir %s", buf);
}

static void parent_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  char *slash = strrchr(buf, '/');
  if (slash != NULL && slash != buf) { *slash = '\0'; mkdirs(buf, 0755); }
}

static void op_tmpfs(char **a) {
  const char *dst = in_new(a[0]);
  char opts[64];
  snprintf(opts, sizeof opts, "mode=%s", a[1]);
  mkdirs(dst, 0755);
  if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) fail("mount tmpfs on %s", a[0]);
}

static void op_dir(char **a) { mkdirs(in_new(a[0]), (mode_t)num(a[1], 8)); }

/* Flags a remount must keep: in a user namespace the kernel refuses to clear nosuid/nodev/noexec/atime flags that
 * the source mount has ("locked"), so they are read back and carried over. */
static unsigned long locked_flags(const char *path) {
  struct statvfs sv;
  if (statvfs(path, &sv) != 0) fail("statvfs %s", path);
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

/* bind SRC DST MODE: MODE is ro, rw or dev (a device node: keeps device access, still nosuid). Not recursive: mounts
 * below SRC on the host stay out. The mount point is made to match the source (directory or file). */
static void op_bind(char **a) {
  struct stat st;
  const char *src = in_old(a[0]);
  if (stat(src, &st) != 0) fail("bind source %s", a[0]);
  const char *dst = in_new(a[1]);
  if (S_ISDIR(st.st_mode)) {
    mkdirs(dst, 0755);
  } else if (access(dst, F_OK) != 0) {
    parent_dirs(dst);
    int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail("mount point %s", a[1]);
    close(fd);
  }
  if (mount(src, dst, NULL, MS_BIND, NULL) != 0) fail("bind %s", a[0]);
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | locked_flags(dst);
  if (strcmp(a[2], "dev") != 0) flags |= MS_NODEV;
  if (strcmp(a[2], "ro") == 0) flags |= MS_RDONLY;
  if (mount(NULL, dst, NULL, flags, NULL) != 0) fail("remount %s (%s)", a[1], a[2]);
}

static void op_proc(char **a) {
  mkdirs(in_new(a[0]), 0555);
  if (mount("proc", in_new(a[0]), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) fail("mount proc");
}

/* A private devpts instance: the agent sees only the terminals it opens itself, never the host's. */
static void op_devpts(char **a) {
  mkdirs(in_new(a[0]), 0755);
  if (mount("devpts", in_new(a[0]), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0)
    fail("mount devpts");
}

static void op_symlink(char **a) {
  const char *dst = in_new(a[1]);
  parent_dirs(dst);
  if (symlink(a[0], dst) != 0 && errno != EEXIST) fail("symlink %s", a[1]);
}

static void op_file(char **a) {
  const char *dst = in_new(a[0]);
  parent_dirs(dst);
  int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)num(a[1], 8));
  size_t len = strlen(a[2]);
  if (fd < 0 || write(fd, a[2], len) != (ssize_t)len) fail("writing %s", a[0]);
  close(fd);
}

void build_root(void) {
  /* Nothing done here propagates back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("making / private");
  /* A private tmpfs on /tmp (this namespace only) holds /oldroot and /newroot while the root is assembled. */
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k") != 0) fail("staging tmpfs");
  if (chdir("/tmp") != 0 || mkdir("oldroot", 0700) != 0 || mkdir("newroot", 0755) != 0) fail("staging dirs");
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) fail("pivot_root into staging");
  if (chdir("/") != 0) fail("chdir /");
  if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) fail("root tmpfs");
  /* The filesystem ops run in plan order (a mount point may lie inside an earlier mount). */
  static const struct { const char *name; void (*fn)(char **); } FS_OPS[] = {
      {"tmpfs", op_tmpfs}, {"dir", op_dir}, {"bind", op_bind}, {"proc", op_proc},
      {"devpts", op_devpts}, {"symlink", op_symlink}, {"file", op_file},
  };
  for (int i = 0; i < n_items; i += op_arity(items[i]) + 1)
    for (size_t k = 0; k < sizeof FS_OPS / sizeof FS_OPS[0]; k++)
      if (strcmp(items[i], FS_OPS[k].name) == 0) FS_OPS[k].fn(items + i + 1);
  /* Final pivot: the new root becomes /, and the staging tmpfs with the old root under it is detached. */
  if (chdir("/newroot") != 0 || syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root into the new root");
  if (umount2(".", MNT_DETACH) != 0) fail("detaching the old root");
  if (chdir("/") != 0) fail("chdir /");
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) fail("read-only root");
}
