"""Drives a command on a real pseudo-terminal, the way a person at a terminal would, for the sandbox's TTY test.

Usage: python3 pty-driver.py '<json>' where json is
  {"uid": N, "gid": N, "argv": [...], "env": {...}, "cwd": DIR, "steps": [[op, ...], ...], "timeout": SECONDS}
and each step is one of
  ["expect", TEXT]      wait until TEXT has appeared in the output since the last expect
  ["send", TEXT]        type TEXT (no newline added)
  ["resize", ROWS, COLS] set the terminal's size (the kernel sends SIGWINCH to its foreground process group)

The command runs as uid/gid in a new session with the terminal as its controlling terminal (pty.fork), like a
login shell's foreground job. Prints one JSON line: {"ok", "failed_step", "status", "output"}; "status" is the
command's exit code (128+n for a signal), or null if it had to be killed.
"""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

spec = json.loads(sys.argv[1])
deadline = time.monotonic() + spec.get("timeout", 60)

pid, fd = pty.fork()
if pid == 0:
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.chdir(spec["cwd"])
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])


def set_size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


set_size(24, 80)
output = b""
seen = 0  # expect looks only at what came after the previous match


def pump(wait):
    global output
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 65536)
    except OSError:  # EIO: every holder of the terminal's other side is gone
        return False
    if not chunk:
        return False
    output += chunk
    return True


failed = None
for i, step in enumerate(spec["steps"]):
    op = step[0]
    if op == "send":
        os.write(fd, step[1].encode())
    elif op == "resize":
        set_size(step[1], step[2])
    elif op == "expect":
        want = step[1].encode()
        alive = True
        while want not in output[seen:] and alive and time.monotonic() < deadline:
            alive = pump(0.1)
        at = output.find(want, seen)
        if at < 0:
            failed = i
            break
        seen = at + len(want)

status = None
while time.monotonic() < deadline:
    done, raw = os.waitpid(pid, os.WNOHANG)
    if done == pid:
        status = os.waitstatus_to_exitcode(raw)
        status = 128 - status if status < 0 else status
        break
    pump(0.05)
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
while pump(0):  # what the command wrote last
    if not select.select([fd], [], [], 0)[0]:
        break

print(json.dumps({"ok": failed is None and status is not None, "failed_step": failed, "status": status, "output": output.decode("utf-8", "replace")}))
