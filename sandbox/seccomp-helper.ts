/**
 * The seccomp-BPF programs the helper's own processes inside the sandbox run under once their setup is done: PID 1
 * (reaps, forwards signals to the agent) and the relays (loopback TCP → a unix socket of lattice's, one child per
 * connection). They share the agent's pid and network namespaces and read bytes the agent wrote, so each gets an
 * allowlist of exactly the calls it makes from then on (traced with strace -f, glibc on x86-64); any other call,
 * another architecture or x32 kills the process. The helper installs them after it has forked the agent (PID 1) or
 * before it accepts (a relay), so neither the agent nor the relays inherit a program meant for another process.
 */
import { ALLOW, ENOSYS, JEQ, JSET, KILL_PROCESS, LD_ABS, NR, RET, arg, archCheck, assemble, errno, type Insn } from './bpf.ts';
import { AF, CLONE_NEW_FLAGS } from './seccomp.ts';

/** x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
const SYS = {
  read: 0, write: 1, close: 3, poll: 7, rt_sigreturn: 15, socket: 41, connect: 42, shutdown: 48, clone: 56, exit: 60,
  wait4: 61, kill: 62, restart_syscall: 219, exit_group: 231, ppoll: 271, set_robust_list: 273, accept4: 288, clone3: 435,
} as const;
type Syscall = keyof typeof SYS;

/** PID 1 after it forked the agent: closes its status pipe, waits (reaping orphans), forwards signals, exits. */
export const INIT_ALLOWED: readonly Syscall[] = ['close', 'wait4', 'kill', 'rt_sigreturn', 'restart_syscall', 'exit', 'exit_group'];

/**
 * A relay: accepts, forks a child per connection (clone without CLONE_NEW*; glibc's fork then sets its robust
 * list), and the child opens a unix socket (AF_UNIX only) to lattice's proxy and copies bytes both ways.
 */
export const RELAY_ALLOWED: readonly Syscall[] = [
  'accept4', 'clone', 'set_robust_list', 'socket', 'connect', 'poll', 'ppoll', 'read', 'write', 'shutdown', 'close',
  'rt_sigreturn', 'restart_syscall', 'exit', 'exit_group',
];

function allowlist(allowed: readonly Syscall[]): Buffer {
  const p: Insn[] = archCheck();
  // Argument checks first: clone3's flags live in memory a filter cannot read, so it is ENOSYS (glibc then uses clone).
  if (allowed.includes('clone')) {
    p.push(
      { code: JEQ, k: SYS.clone3, jt: 'enosys', jf: 0 },
      { code: JEQ, k: SYS.clone, jt: 0, jf: 'not-clone' },
      { code: LD_ABS, k: arg(0) },
      { code: JSET, k: CLONE_NEW_FLAGS, jt: 'kill', jf: 'allow' },
      { code: LD_ABS, k: NR, label: 'not-clone' }, // the number again, for the checks below
    );
  }
  if (allowed.includes('socket')) {
    p.push(
      { code: JEQ, k: SYS.socket, jt: 0, jf: 'not-socket' },
      { code: LD_ABS, k: arg(0) },
      { code: JEQ, k: AF.UNIX, jt: 'allow', jf: 'kill' },
      { code: LD_ABS, k: NR, label: 'not-socket' },
    );
  }
  for (const name of allowed) if (name !== 'clone' && name !== 'socket') p.push({ code: JEQ, k: SYS[name], jt: 'allow', jf: 0 });
  p.push(
    { code: RET, k: KILL_PROCESS, label: 'kill' },
    { code: RET, k: ALLOW, label: 'allow' },
    { code: RET, k: errno(ENOSYS), label: 'enosys' },
  );
  return assemble(p);
}

export const initProgram = (): Buffer => allowlist(INIT_ALLOWED);
export const relayProgram = (): Buffer => allowlist(RELAY_ALLOWED);
