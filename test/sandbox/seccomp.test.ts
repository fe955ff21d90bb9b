/**
 * What the generated seccomp programs decide, run through a small classic-BPF interpreter (the instructions the
 * generator emits: LD|W|ABS, JEQ, JGE, JSET, RET): the agent's personality, modify_ldt and set-id rules, and the helper's own
 * allowlists for PID 1 and the relays, pinned as literal syscall numbers. The kernel-side counterparts run the real
 * helper (helper-confinement.test.ts) and every probe (containment.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seccompProgram } from '../../sandbox/seccomp.ts';
import { INIT_ALLOWED, RELAY_ALLOWED, initProgram, relayProgram } from '../../sandbox/seccomp-helper.ts';

const X86_64 = 0xc000003e;
const ALLOW = 0x7fff0000;
const KILL = 0x80000000;
const EPERM = 0x50001;
const ENOSYS = 0x50026;

/** Runs `program` on one struct seccomp_data; args are 64-bit values (bigint) or small numbers. */
function run(program: Buffer, nr: number, args: readonly (number | bigint)[] = [], arch = X86_64): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < program.length / 8; ) {
    const code = program.readUInt16LE(pc * 8);
    const [jt, jf] = [program.readUInt8(pc * 8 + 2), program.readUInt8(pc * 8 + 3)];
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x06) return k;
    if (code === 0x20) acc = data.readUInt32LE(k);
    const jump = (taken: boolean) => (pc += 1 + (taken ? jt : jf));
    if (code === 0x15) jump(acc === k);
    else if (code === 0x35) jump(acc >= k);
    else if (code === 0x45) jump((acc & k) !== 0);
    else if (code === 0x20) pc += 1;
    else throw new Error(`instruction ${code.toString(16)} at ${pc} is not one the generator emits`);
  }
  throw new Error('the program ran off its end');
}

describe('the agent\'s seccomp program', () => {
  const agent = seccompProgram();

  it('modify-ldt: modify_ldt (154) fails with EPERM, whatever its arguments', () => {
    for (const func of [0, 1, 2, 0x11]) assert.equal(run(agent, 154, [func, 0, 16]), EPERM);
  });

  it('personality-change: only a query (0xffffffff) and PER_LINUX (0) are allowed; any other persona is EPERM', () => {
    assert.equal(run(agent, 135, [0xffffffff]), ALLOW);
    assert.equal(run(agent, 135, [-1]), ALLOW, 'a query passed as -1 (upper bits set, which the kernel ignores)');
    assert.equal(run(agent, 135, [0]), ALLOW);
    // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ADDR_LIMIT_32BIT, PER_LINUX32, UNAME26, and a mix.
    for (const persona of [0x0400000, 0x0040000, 0x0100000, 0x0800000, 0x0008, 0x0020000, 0x0440000]) {
      assert.equal(run(agent, 135, [persona]), EPERM, `persona 0x${persona.toString(16)}`);
    }
  });

  it('setuid-bit: a mode with S_ISUID or S_ISGID is EPERM in every call that takes one; an ordinary mode is allowed', () => {
    // [nr, the arguments before the mode]
    const calls: Record<string, [number, number[]]> = {
      chmod: [90, [0]], fchmod: [91, [3]], fchmodat: [268, [-100, 0]], fchmodat2: [452, [-100, 0]], creat: [85, [0]],
      mkdir: [83, [0]], mkdirat: [258, [-100, 0]], mknod: [133, [0]], mknodat: [259, [-100, 0]],
      'open O_CREAT': [2, [0, 0o101]], 'openat O_CREAT': [257, [-100, 0, 0o101]], 'openat O_TMPFILE': [257, [-100, 0, 0o20200001]],
    };
    for (const [name, [nr, before]] of Object.entries(calls)) {
      for (const mode of [0o4755, 0o2755, 0o6755, 0o104755, 0o4000]) assert.equal(run(agent, nr, [...before, mode]), EPERM, `${name} 0${mode.toString(8)}`);
      for (const mode of [0o755, 0o644, 0o1777, 0o100644, 0]) assert.equal(run(agent, nr, [...before, mode]), ALLOW, `${name} 0${mode.toString(8)}`);
    }
  });

  it('setuid-bit: open and openat read their mode only with O_CREAT or O_TMPFILE (else the kernel ignores it); openat2 is ENOSYS', () => {
    assert.equal(run(agent, 2, [0, 0, 0o4755]), ALLOW, 'open O_RDONLY');
    assert.equal(run(agent, 257, [-100, 0, 0o2, 0o6755]), ALLOW, 'openat O_RDWR');
    assert.equal(run(agent, 437, [-100, 0, 0, 24]), ENOSYS);
  });

  it('leaves the calls around them as they were (read allowed, socket rules, other arch killed)', () => {
    assert.equal(run(agent, 0, [3, 0, 10]), ALLOW);
    assert.equal(run(agent, 41, [2, 1, 0]), ALLOW);
    assert.equal(run(agent, 41, [17, 3, 0]), 0x50061);
    assert.equal(run(agent, 135, [0], 0x40000003), KILL, 'i386 personality');
  });
});

describe('the helper\'s own seccomp programs (PID 1 and the relays)', () => {
  it('pins the allowlists literally', () => {
    assert.deepEqual([...INIT_ALLOWED].sort(), ['close', 'exit', 'exit_group', 'kill', 'restart_syscall', 'rt_sigreturn', 'wait4']);
    assert.deepEqual([...RELAY_ALLOWED].sort(), [
      'accept4', 'clone', 'close', 'connect', 'exit', 'exit_group', 'poll', 'ppoll', 'read', 'restart_syscall', 'rt_sigreturn',
      'set_robust_list', 'shutdown', 'socket', 'write',
    ]);
  });

  it('PID 1 may make exactly its calls; every other number (and x32, and another arch) kills it', () => {
    const init = initProgram();
    const allowed = new Set([3, 61, 62, 15, 219, 60, 231]); // close, wait4, kill, rt_sigreturn, restart_syscall, exit, exit_group
    for (let nr = 0; nr < 480; nr++) assert.equal(run(init, nr), allowed.has(nr) ? ALLOW : KILL, `syscall ${nr}`);
    assert.equal(run(init, 0x40000000 + 61), KILL);
    assert.equal(run(init, 61, [], 0x40000003), KILL);
  });

  it('a relay may make exactly its calls; socket only AF_UNIX, clone without CLONE_NEW*, clone3 ENOSYS', () => {
    const relay = relayProgram();
    // read, write, close, poll, rt_sigreturn, shutdown, exit, restart_syscall, exit_group, ppoll, set_robust_list, accept4, connect
    const plain = new Set([0, 1, 3, 7, 15, 48, 60, 219, 231, 271, 273, 288, 42]);
    for (let nr = 0; nr < 480; nr++) {
      if (nr === 41 || nr === 56 || nr === 435) continue;
      assert.equal(run(relay, nr), plain.has(nr) ? ALLOW : KILL, `syscall ${nr}`);
    }
    assert.equal(run(relay, 41, [1, 1, 0]), ALLOW, 'AF_UNIX');
    for (const family of [2, 10, 16, 17]) assert.equal(run(relay, 41, [family, 1, 0]), KILL, `socket family ${family}`);
    assert.equal(run(relay, 56, [0x01200011]), ALLOW, 'glibc fork: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD');
    for (const flag of [0x10000000, 0x20000, 0x40000000, 0x20000000]) assert.equal(run(relay, 56, [0x01200011 | flag]), KILL, `clone flag 0x${flag.toString(16)}`);
    assert.equal(run(relay, 435), ENOSYS);
  });
});
