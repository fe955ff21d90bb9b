"""Containment probes, run as the agent inside `lattice sandbox` (test/sandbox/containment.test.ts drives them).

Each probe prints one JSON line {"probe": name, "contained": bool, "detail": text}. "contained" is True when the
attempt was denied (for escape probes) or worked (for the normal-work probes, whose names start with "work:").
Every target is harmless: paths and listeners the test made for this run, addresses with no route from inside.

argv[1] is a JSON object from the test: host paths and ports to aim at.
"""
import ctypes
import errno
import json
import os
import pty
import socket
import subprocess
import sys

ARGS = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def report(probe, contained, detail=""):
    print(json.dumps({"probe": probe, "contained": bool(contained), "detail": str(detail)[:300]}), flush=True)


def denied(probe, fn, expect=None):
    """Runs fn; contained when it raises OSError (with an errno in expect, if given)."""
    try:
        result = fn()
        report(probe, False, f"succeeded: {result!r}")
    except OSError as e:
        report(probe, expect is None or e.errno in expect, f"{errno.errorcode.get(e.errno, e.errno)} {e.strerror}")


def sys_call(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def write_file(path, text="escaped\n"):
    with open(path, "w") as f:
        f.write(text)
    return path


EPERM_LIKE = {errno.EPERM, errno.EACCES, errno.EROFS, errno.ENOENT}

# --- files ---------------------------------------------------------------------------------------------------
for target in ARGS["outside"]:
    denied(f"1 write {target}", lambda t=target: write_file(t), EPERM_LIKE)
for target in ARGS["shadowed"]:  # these land in the sandbox's own tmpfs or home; the test checks the host's copy
    try:
        write_file(target)
    except OSError:
        pass
for secret in ARGS["secrets"]:
    report(f"2 read {secret}", not os.path.exists(secret), "exists" if os.path.exists(secret) else "not visible")
ws = ARGS["workspace"]
os.symlink("/etc", f"{ws}/link-to-etc")
denied("3 write through a symlink to /etc", lambda: write_file(f"{ws}/link-to-etc/lattice-probe"), EPERM_LIKE)
denied("4 hard link to /etc/passwd", lambda: os.link("/etc/passwd", f"{ws}/passwd-link"), {errno.EXDEV, errno.EPERM, errno.EACCES})
for protected in ARGS["protected"]:
    denied(f"5 write protected {protected}", lambda p=protected: write_file(f"{ws}/{p}"), EPERM_LIKE | {errno.EISDIR})
denied("5 rename .git away", lambda: os.rename(f"{ws}/.git", f"{ws}/git-moved"), {errno.EBUSY, errno.EPERM, errno.EACCES, errno.EXDEV})
denied("6 mknod a device", lambda: os.mknod(f"{ws}/null-dev", 0o20666, os.makedev(1, 3)), {errno.EPERM, errno.EACCES})
out = subprocess.run([f"{ws}/setuid-cat", "/proc/self/status"], capture_output=True, text=True).stdout
uids = next((l.split()[1:] for l in out.splitlines() if l.startswith("Uid:")), [])
cap_eff = next((l.split()[1] for l in out.splitlines() if l.startswith("CapEff:")), "?")
report("7 setuid binary gains nothing", len(set(uids)) == 1 and uids[0] == str(os.getuid()) and cap_eff == "0000000000000000", f"uids {uids} CapEff {cap_eff}")

# --- processes and kernel ------------------------------------------------------------------------------------
pids = [p for p in os.listdir("/proc") if p.isdigit()]
report("8 host PIDs invisible", str(ARGS["hostPid"]) not in pids and len(pids) < 30, f"{len(pids)} pids: {sorted(pids, key=int)[:10]}")
try:
    with open("/proc/1/environ", "rb") as f:
        init_env = f.read()
    report("8 /proc/1/environ is the sandbox's", ARGS["marker"].encode() not in init_env, f"{len(init_env)} bytes")
except PermissionError as e:  # Landlock: PID 1 is outside the agent's domain, so not even readable
    report("8 /proc/1/environ is the sandbox's", True, f"not readable: {e.strerror}")
PTRACE_ATTACH, PTRACE_TRACEME = 16, 0
denied("9 ptrace attach to PID 1", lambda: sys_call(101, PTRACE_ATTACH, 1, 0, 0), {errno.EPERM})
denied("9 ptrace traceme", lambda: sys_call(101, PTRACE_TRACEME, 0, 0, 0), {errno.EPERM})
iov = (ctypes.c_char * 8)()
denied("10 process_vm_readv", lambda: sys_call(310, 1, ctypes.addressof(iov), 1, ctypes.addressof(iov), 1, 0), {errno.EPERM})
r = subprocess.run(["unshare", "-U", "-r", "true"], capture_output=True, text=True)
report("11 unshare -U -r true fails", r.returncode != 0, r.stderr.strip())
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x40000000, 0x20000, 17


def clone(flags):
    pid = sys_call(56, flags | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)  # escaped: the child leaves at once, the parent reports it
    os.waitpid(pid, 0)
    return pid


for name, flags in [("NEWUSER", CLONE_NEWUSER), ("NEWNET", CLONE_NEWNET), ("NEWNS", CLONE_NEWNS)]:
    denied(f"12 clone CLONE_{name}", lambda f=flags: clone(f), {errno.EPERM})
    denied(f"12 unshare CLONE_{name}", lambda f=flags: sys_call(272, f), {errno.EPERM})
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
denied("12 setns", lambda: sys_call(308, fd, 0), {errno.EPERM})
denied("12 clone3 is ENOSYS", lambda: sys_call(435, 0, 0), {errno.ENOSYS})
os.makedirs(f"{ws}/mnt", exist_ok=True)
denied("13 mount tmpfs", lambda: sys_call(165, b"tmpfs", f"{ws}/mnt".encode(), b"tmpfs", 0, 0), {errno.EPERM})
denied("13 fsopen", lambda: sys_call(430, b"tmpfs", 0), {errno.EPERM})
denied("13 open_tree", lambda: sys_call(428, -100, f"{ws}/mnt".encode(), 1), {errno.EPERM})
denied("13 move_mount", lambda: sys_call(429, -100, f"{ws}/mnt".encode(), -100, f"{ws}/mnt".encode(), 0), {errno.EPERM})
denied("13 pivot_root", lambda: sys_call(155, f"{ws}/mnt".encode(), f"{ws}/mnt".encode()), {errno.EPERM})
denied("13 chroot", lambda: sys_call(161, f"{ws}/mnt".encode()), {errno.EPERM})
params = (ctypes.c_char * 120)()
denied("14 io_uring_setup", lambda: sys_call(425, 1, ctypes.addressof(params)), {errno.EPERM})
for name, nr, args in [("keyctl", 250, (0, 0, 0, 0, 0)), ("add_key", 248, (b"user", b"x", 0, 0, -2)), ("request_key", 249, (b"user", b"x", 0, 0)),
                       ("bpf", 321, (0, 0, 0)), ("perf_event_open", 298, (0, 0, -1, -1, 0)), ("userfaultfd", 323, (0,)),
                       ("init_module", 175, (0, 0, b"")), ("finit_module", 313, (0, b"", 0)), ("kexec_load", 246, (0, 0, 0, 0))]:
    denied(f"15 {name}", lambda n=nr, a=args: sys_call(n, *a), {errno.EPERM})
denied("15 modify_ldt", lambda: sys_call(154, 0, ctypes.addressof(iov), 8), {errno.EPERM})
denied("15 personality ADDR_NO_RANDOMIZE", lambda: sys_call(135, 0x0040000), {errno.EPERM})
helper_seccomp = {}
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        if open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].endswith(b"lattice-sandbox"):
            helper_seccomp[pid] = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("Seccomp:"))
    except OSError:
        pass  # a relay's per-connection child that ended meanwhile
report("8 PID 1 and the relays run under seccomp", "1" in helper_seccomp and set(helper_seccomp.values()) == {"2"}, helper_seccomp)
with open("/proc/self/status") as f:
    status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
report("16 NoNewPrivs 1", status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"].strip())
report("16 CapEff 0", int(status["CapEff"], 16) == 0, status["CapEff"].strip())
report("16 CapPrm 0", int(status["CapPrm"], 16) == 0, status["CapPrm"].strip())
master, slave = pty.openpty()
char = ctypes.c_char(b"x")
for name, req in [("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541C)]:
    for which, tty_fd in [("master", master), ("slave", slave)]:
        denied(f"17 ioctl {name} ({which})", lambda f=tty_fd, q=req: sys_call(16, f, q, ctypes.addressof(char)), {errno.EPERM})
# A 32-bit ABI syscall (x32 getpid) must kill the process (SIGSYS), not run: done in a child, which it kills.
x32 = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).syscall(0x40000000 + 39)"], capture_output=True)
report("12 x32 syscall kills the process", x32.returncode == -31, f"exit {x32.returncode}")
for name, family, kind, proto in [("AF_VSOCK", 40, socket.SOCK_STREAM, 0), ("AF_PACKET", 17, socket.SOCK_RAW, 0),
                                  ("AF_NETLINK audit", 16, socket.SOCK_RAW, 9), ("AF_NETLINK uevent", 16, socket.SOCK_DGRAM, 15),
                                  ("AF_BLUETOOTH", 31, socket.SOCK_STREAM, 0), ("AF_ALG", 38, socket.SOCK_SEQPACKET, 0)]:
    denied(f"18 socket {name}", lambda f=family, k=kind, p=proto: socket.socket(f, k, p), {errno.EAFNOSUPPORT, errno.EPERM})


# --- network -------------------------------------------------------------------------------------------------
def connect(family, address, timeout=3):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address)
        return "connected"
    finally:
        s.close()


denied("19 host 127.0.0.1 listener", lambda: connect(socket.AF_INET, ("127.0.0.1", ARGS["hostPort"])))
denied("19 host [::1] listener", lambda: connect(socket.AF_INET6, ("::1", ARGS["hostPort6"])))
for host, port in [("192.0.2.1", 443), ("1.1.1.1", 443), ("169.254.169.254", 80)]:
    denied(f"20 direct {host}:{port}", lambda h=host, p=port: connect(socket.AF_INET, (h, p)))
denied("21 host abstract unix socket", lambda: connect(socket.AF_UNIX, "\0" + ARGS["abstract"]))
for path in ARGS["hostSockets"] + ["/var/run/docker.sock", "/run/docker.sock"]:
    report(f"22 host unix socket {path}", not os.path.exists(path), "present" if os.path.exists(path) else "not present")
env = dict(os.environ)
leaked = [k for k in env if k.endswith(("_API_KEY", "_TOKEN", "_SECRET")) or k.startswith(("AWS_", "GITHUB_")) or k in ("SSH_AUTH_SOCK", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS")]
report("26 no secrets in the environment", not leaked, ", ".join(leaked))

# --- normal work ---------------------------------------------------------------------------------------------
def work(probe, fn):
    try:
        report(probe, True, fn())
    except Exception as e:  # noqa: BLE001 - any failure of normal work is the finding
        report(probe, False, f"{type(e).__name__}: {e}")


def run(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True, cwd=ws)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {r.returncode}: {r.stderr.strip()[:200]}")
    return r.stdout.strip()[:100]


work("work: write, read, exec in the workspace", lambda: (write_file(f"{ws}/hello.sh", "#!/bin/sh\necho hi\n"), os.chmod(f"{ws}/hello.sh", 0o755), run(f"{ws}/hello.sh"))[2])
work("work: git init and commit", lambda: (run("git", "init", "-q", "sub"), run("git", "-C", "sub", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m", "x"), run("git", "-C", "sub", "log", "--oneline"))[2])
work("work: node -e", lambda: run("node", "-e", "console.log(1 + 1)"))
work("work: /dev/null, /dev/urandom", lambda: (write_file("/dev/null"), len(open("/dev/urandom", "rb").read(16)))[1])
work("work: /dev/tty and /dev/pts exist", lambda: (os.stat("/dev/tty"), os.ttyname(slave))[1])
work("work: /tmp and /dev/shm writable", lambda: (write_file("/tmp/x"), write_file("/dev/shm/x"))[1])


def loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=3)
    conn, _ = server.accept()
    client.sendall(b"ping")
    return conn.recv(4).decode()


work("work: loopback server inside", loopback)
work("work: netlink route socket (getifaddrs)", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close() or socket.if_nameindex())
if ARGS.get("allowedUrl"):
    work("work: HTTPS to an allowed host (curl)", lambda: run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ARGS["allowedUrl"]))
if ARGS.get("latticeCli"):
    work("work: the agent reaches the gate", lambda: run("node", ARGS["latticeCli"], "whoami", "--json"))
    work("work: the agent runs an allowed action", lambda: run("node", ARGS["latticeCli"], "exec", "echo", "--params", '{"message":"from the sandbox"}', "--json"))

print(json.dumps({"probe": "done", "contained": True, "detail": ""}), flush=True)
