/**
 * The seccomp-BPF program the agent runs under, generated here and installed by the helper just before execve.
 *
 * Shape: a default-allow program with a deny list (the namespaces, Landlock and the dropped capabilities are the
 * main boundary; this list removes kernel attack surface and the escape routes an unprivileged process still has):
 *   1. architecture check: anything but x86-64 (e.g. a 32-bit `int 0x80` syscall) kills the process;
 *   2. x32 system calls (nr ≥ 0x40000000) kill the process;
 *   3. DENIED syscalls fail with EPERM; clone3 fails with ENOSYS so libc falls back to clone, whose flags can be read;
 *   4. clone with any CLONE_NEW* flag, ioctl TIOCSTI/TIOCLINUX (keystroke injection into the host terminal),
 *      personality other than a query or the default persona, and socket families other than
 *      unix/inet/inet6/netlink-route fail;
 *   5. set-id bits: a mode with S_ISUID or S_ISGID fails with EPERM wherever a mode is given (chmod, fchmod,
 *      fchmodat, fchmodat2, creat, mkdir, mkdirat, mknod, mknodat, open and openat with O_CREAT or O_TMPFILE), and
 *      openat2 fails with ENOSYS (its mode is in a struct a filter cannot read; libc falls back to openat). The files
 *      the agent writes are the user's: run as root, a setuid file there would be a root program for anyone on the
 *      host (systemd's RestrictSUIDSGID= denies the same calls).
 */
import { ALLOW, EAFNOSUPPORT, ENOSYS, EPERM, JEQ, JSET, KILL_PROCESS, LD_ABS, RET, arg, archCheck, assemble, errno, type Insn } from './bpf.ts';

/** x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
export const DENIED: Readonly<Record<string, number>> = {
  // other processes' memory
  ptrace: 101,
  process_vm_readv: 310,
  process_vm_writev: 311,
  pidfd_getfd: 438,
  process_madvise: 440,
  kcmp: 312,
  // namespaces and the mount family
  unshare: 272,
  setns: 308,
  mount: 165,
  umount2: 166,
  pivot_root: 155,
  chroot: 161,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  open_tree: 428,
  move_mount: 429,
  mount_setattr: 442,
  open_tree_attr: 467,
  // kernel attack surface
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  bpf: 321,
  keyctl: 250,
  add_key: 248,
  request_key: 249,
  perf_event_open: 298,
  userfaultfd: 323,
  init_module: 175,
  finit_module: 313,
  delete_module: 176,
  kexec_load: 246,
  kexec_file_load: 320,
  open_by_handle_at: 304,
  name_to_handle_at: 303,
  fanotify_init: 300,
  lookup_dcookie: 212,
  move_pages: 279,
  migrate_pages: 256,
  // host administration (needs capabilities the agent never has; denied outright all the same)
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  iopl: 172,
  ioperm: 173,
  modify_ldt: 154, // 16-bit segments: a history of kernel leaks, needed by no 64-bit program (Docker, Flatpak deny it)
  acct: 163,
  quotactl: 179,
  quotactl_fd: 443,
  syslog: 103,
  uselib: 134,
  vhangup: 153,
  nfsservctl: 180,
  settimeofday: 164,
  clock_settime: 227,
  clock_adjtime: 305,
  adjtimex: 159,
};

export const SYSCALL = { clone: 56, clone3: 435, ioctl: 16, socket: 41, personality: 135, open: 2, openat: 257, openat2: 437 } as const;
export const CLONE_NEW_FLAGS = 0x7e020080; // NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
/**
 * personality(2) arguments the agent may pass: a query (0xffffffff) and PER_LINUX, the default persona. Any other
 * (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, …) turns off memory protections for what the process
 * runs next. Docker's default profile allows only these and the 32-bit personas; Flatpak (bubblewrap's --seccomp)
 * only the default persona. Only the low 32 bits are compared: the kernel takes the argument as an unsigned int.
 */
export const PERSONALITY_ALLOWED = [0xffffffff, 0] as const;
/** Socket families the agent may open: unix, inet, inet6, and netlink with protocol 0 (route: getifaddrs). */
export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16 } as const;

/** Calls that take a mode, and the index of the argument it is in. */
export const MODE_ARG: Readonly<Record<string, readonly [nr: number, arg: number]>> = {
  chmod: [90, 1],
  fchmod: [91, 1],
  fchmodat: [268, 2],
  fchmodat2: [452, 2],
  creat: [85, 1],
  mkdir: [83, 1],
  mkdirat: [258, 2],
  mknod: [133, 1],
  mknodat: [259, 2],
};
/** S_ISUID | S_ISGID. Only the low 32 bits are compared: the kernel takes a mode as an unsigned short. */
export const SET_ID_BITS = 0o6000;
/** O_CREAT | __O_TMPFILE: the open flags with which open and openat use their mode (else it is ignored, and unread). */
export const OPEN_WITH_MODE = 0o100 | 0o20000000;

/** The program for this machine, as the helper expects it (struct sock_filter array, little-endian). */
export function seccompProgram(): Buffer {
  const p: Insn[] = archCheck();
  for (const nr of Object.values(DENIED)) p.push({ code: JEQ, k: nr, jt: 'eperm', jf: 0 });
  p.push(
    { code: JEQ, k: SYSCALL.clone3, jt: 'enosys', jf: 0 },
    { code: JEQ, k: SYSCALL.clone, jt: 0, jf: 'not-clone' },
    { code: LD_ABS, k: arg(0) },
    { code: JSET, k: CLONE_NEW_FLAGS, jt: 'eperm', jf: 'allow' },
    { code: JEQ, k: SYSCALL.ioctl, jt: 0, jf: 'not-ioctl', label: 'not-clone' },
    { code: LD_ABS, k: arg(1) },
    { code: JEQ, k: TIOCSTI, jt: 'eperm', jf: 0 },
    { code: JEQ, k: TIOCLINUX, jt: 'eperm', jf: 'allow' },
    { code: JEQ, k: SYSCALL.personality, jt: 0, jf: 'not-personality', label: 'not-ioctl' },
    { code: LD_ABS, k: arg(0) },
    ...PERSONALITY_ALLOWED.map((persona): Insn => ({ code: JEQ, k: persona, jt: 'allow', jf: 0 })),
    { code: RET, k: errno(EPERM) },
    { code: JEQ, k: SYSCALL.socket, jt: 0, jf: 'not-socket', label: 'not-personality' },
    { code: LD_ABS, k: arg(0) },
    { code: JEQ, k: AF.UNIX, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.INET, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.INET6, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.NETLINK, jt: 0, jf: 'eafnosupport' },
    { code: LD_ABS, k: arg(2) },
    { code: JEQ, k: 0, jt: 'allow', jf: 'eafnosupport' },
    ...setIdChecks(),
    { code: RET, k: errno(EAFNOSUPPORT), label: 'eafnosupport' },
    { code: RET, k: ALLOW, label: 'allow' },
    { code: RET, k: errno(EPERM), label: 'eperm' },
    { code: RET, k: errno(ENOSYS), label: 'enosys' },
    { code: RET, k: KILL_PROCESS, label: 'kill' },
  );
  return assemble(p);
}

/** Section 5, entered with the syscall number loaded ('not-socket'): no mode the agent gives may carry a set-id bit. */
function setIdChecks(): Insn[] {
  const modeIn = (i: number): Insn[] => [
    { code: LD_ABS, k: arg(i), label: `mode-arg${i}` },
    { code: JSET, k: SET_ID_BITS, jt: 'eperm', jf: 'allow' },
  ];
  return [
    { code: JEQ, k: SYSCALL.openat2, jt: 'enosys', jf: 0, label: 'not-socket' },
    ...Object.values(MODE_ARG).map(([nr, i]): Insn => ({ code: JEQ, k: nr, jt: `mode-arg${i}`, jf: 0 })),
    { code: JEQ, k: SYSCALL.open, jt: 'open-flags', jf: 0 },
    { code: JEQ, k: SYSCALL.openat, jt: 'openat-flags', jf: 'allow' },
    { code: LD_ABS, k: arg(1), label: 'open-flags' },
    { code: JSET, k: OPEN_WITH_MODE, jt: 'mode-arg2', jf: 'allow' },
    { code: LD_ABS, k: arg(2), label: 'openat-flags' },
    { code: JSET, k: OPEN_WITH_MODE, jt: 'mode-arg3', jf: 'allow' },
    ...modeIn(1),
    ...modeIn(2),
    ...modeIn(3),
  ];
}
