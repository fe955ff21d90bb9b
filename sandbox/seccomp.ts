/**
 * The seccomp-BPF program the agent runs under, generated here and installed by the helper just before execve.
 *
 * Shape: a default-allow program with a deny list (the namespaces, Landlock and the dropped capabilities are the
 * main boundary; this list removes kernel attack surface and the escape routes an unprivileged process still has):
 *   1. architecture check: anything but x86-64 (e.g. a 32-bit `int 0x80` syscall) kills the process;
 *   2. x32 system calls (nr ≥ 0x40000000) kill the process;
 *   3. DENIED syscalls fail with EPERM; clone3 fails with ENOSYS so libc falls back to clone, whose flags can be read;
 *   4. clone with any CLONE_NEW* flag, ioctl TIOCSTI/TIOCLINUX (keystroke injection into the host terminal), and
 *      socket families other than unix/inet/inet6/netlink-route fail.
 * Written by hand because no maintained npm library generates seccomp BPF; the program is small and a literal test
 * pins it.
 */

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

export const SYSCALL = { clone: 56, clone3: 435, ioctl: 16, socket: 41 } as const;
export const CLONE_NEW_FLAGS = 0x7e020080; // NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
/** Socket families the agent may open: unix, inet, inet6, and netlink with protocol 0 (route: getifaddrs). */
export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16 } as const;

const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;

// BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET = 0x06; // BPF_RET | BPF_K
const KILL_PROCESS = 0x80000000;
const ALLOW = 0x7fff0000;
const errno = (n: number) => 0x00050000 | n;

// struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (the low 32 bits first on little-endian).
const NR = 0;
const ARCH = 4;
const arg = (i: number) => 16 + 8 * i;

type Target = string | number; // a label, or "the next instruction" (0)
interface Insn { code: number; k: number; jt?: Target; jf?: Target; label?: string }

/** Resolves label jumps into BPF's forward offsets; a backwards or too-long jump is a generator bug. */
function assemble(program: Insn[]): Buffer {
  const at = new Map<string, number>();
  program.forEach((insn, i) => insn.label !== undefined && at.set(insn.label, i));
  const out = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    const offset = (t: Target | undefined) => {
      if (t === undefined || typeof t === 'number') return t ?? 0;
      const to = at.get(t);
      if (to === undefined || to <= i || to - i - 1 > 255) throw new Error(`seccomp: bad jump to ${t}`);
      return to - i - 1;
    };
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(offset(insn.jt), i * 8 + 2);
    out.writeUInt8(offset(insn.jf), i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}

/** The program for this machine, as the helper expects it (struct sock_filter array, little-endian). */
export function seccompProgram(): Buffer {
  if (process.arch !== 'x64') throw new Error(`lattice sandbox supports x86-64 only (this is ${process.arch})`);
  const p: Insn[] = [
    { code: LD_ABS, k: ARCH },
    { code: JEQ, k: AUDIT_ARCH_X86_64, jt: 0, jf: 'kill' },
    { code: LD_ABS, k: NR },
    { code: JGE, k: X32_SYSCALL_BIT, jt: 'kill', jf: 0 },
  ];
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
    { code: JEQ, k: SYSCALL.socket, jt: 0, jf: 'allow', label: 'not-ioctl' },
    { code: LD_ABS, k: arg(0) },
    { code: JEQ, k: AF.UNIX, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.INET, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.INET6, jt: 'allow', jf: 0 },
    { code: JEQ, k: AF.NETLINK, jt: 0, jf: 'eafnosupport' },
    { code: LD_ABS, k: arg(2) },
    { code: JEQ, k: 0, jt: 'allow', jf: 'eafnosupport' },
    { code: RET, k: errno(EAFNOSUPPORT), label: 'eafnosupport' },
    { code: RET, k: ALLOW, label: 'allow' },
    { code: RET, k: errno(EPERM), label: 'eperm' },
    { code: RET, k: errno(ENOSYS), label: 'enosys' },
    { code: RET, k: KILL_PROCESS, label: 'kill' },
  );
  return assemble(p);
}
