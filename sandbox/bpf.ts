/**
 * Classic BPF for seccomp: the opcodes and return values the sandbox's programs use, the layout of
 * `struct seccomp_data`, and an assembler that resolves label jumps. Shared by the agent's program (seccomp.ts) and
 * the helper's own (seccomp-helper.ts).
 * Written by hand because no maintained npm library generates seccomp BPF; the programs are small and literal tests
 * pin them.
 */

// BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
export const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
export const JEQ = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
export const JGE = 0x35; // BPF_JMP | BPF_JGE | BPF_K
export const JSET = 0x45; // BPF_JMP | BPF_JSET | BPF_K
export const RET = 0x06; // BPF_RET | BPF_K
export const KILL_PROCESS = 0x80000000;
export const ALLOW = 0x7fff0000;
export const errno = (n: number): number => 0x00050000 | n;
export const EPERM = 1;
export const ENOSYS = 38;
export const EAFNOSUPPORT = 97;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const X32_SYSCALL_BIT = 0x40000000;

// struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (the low 32 bits first on little-endian).
export const NR = 0;
export const ARCH = 4;
export const arg = (i: number): number => 16 + 8 * i;

export type Target = string | number; // a label, or "the next instruction" (0)
export interface Insn { readonly code: number; readonly k: number; readonly jt?: Target; readonly jf?: Target; readonly label?: string }

/** The common head: anything but x86-64 (e.g. a 32-bit `int 0x80` call) and any x32 call kill the process. */
export function archCheck(): Insn[] {
  if (process.arch !== 'x64') throw new Error(`lattice sandbox supports x86-64 only (this is ${process.arch})`);
  return [
    { code: LD_ABS, k: ARCH },
    { code: JEQ, k: AUDIT_ARCH_X86_64, jt: 0, jf: 'kill' },
    { code: LD_ABS, k: NR },
    { code: JGE, k: X32_SYSCALL_BIT, jt: 'kill', jf: 0 },
  ];
}

/** Resolves label jumps into BPF's forward offsets; a backwards or too-long jump is a generator bug. */
export function assemble(program: readonly Insn[]): Buffer {
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
