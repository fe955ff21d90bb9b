"""Runs a command as if this kernel lacked a feature: a seccomp filter makes the given x86-64 syscalls fail with an
errno (e.g. landlock_create_ruleset with ENOSYS, unshare with EPERM), then execs the command. The filter is
inherited by everything the command starts, so `lattice sandbox` and its helper meet the kernel the test wants.

Usage: python3 deny-syscall.py ERRNO NR[,NR...] -- COMMAND ARGS...
"""
import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
AUDIT_ARCH_X86_64 = 0xC000003E
LD_ABS, JEQ, RET = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
ALLOW, ERRNO = 0x7FFF0000, 0x00050000

errno, numbers = int(sys.argv[1]), [int(n) for n in sys.argv[2].split(",")]
argv = sys.argv[sys.argv.index("--") + 1:]

# arch check (other arches pass), then one compare per syscall, each jumping to the shared deny at the end
program = [(LD_ABS, 0, 0, 4), (JEQ, 0, len(numbers) + 1, AUDIT_ARCH_X86_64), (LD_ABS, 0, 0, 0)]
for i, nr in enumerate(numbers):
    program.append((JEQ, len(numbers) - i, 0, nr))
program += [(RET, 0, 0, ALLOW), (RET, 0, 0, ERRNO | errno)]
blob = b"".join(struct.pack("HBBI", *insn) for insn in program)
buf = ctypes.create_string_buffer(blob)


class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


libc = ctypes.CDLL(None, use_errno=True)
prog = Fprog(len(program), ctypes.addressof(buf))
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
    sys.exit("deny-syscall: cannot install the filter: " + os.strerror(ctypes.get_errno()))
os.execvp(argv[0], argv)
