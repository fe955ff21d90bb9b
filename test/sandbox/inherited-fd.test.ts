/**
 * File descriptors `lattice sandbox` inherits, for real, as root and as a normal user: lattice is started holding a
 * TCP connection to a loopback listener this test started (fd 40) and a file of this test's opened for appending
 * (fd 41), neither close-on-exec, as a launching shell or tool may leave them. Neither reaches the agent; its stdin,
 * stdout and stderr still do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseEnv, gateAs, ownedDir, runners, type SandboxHome } from './harness.ts';

const SCRIPT = `
import errno, json, os, sys
def write(fd):
    try:
        os.write(fd, b'written from inside the sandbox\\n')
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
print(json.dumps({'socket': write(40), 'file': write(41), 'fds': sorted(int(f) for f in os.listdir('/proc/self/fd')), 'stdin': sys.stdin.read()}))
`;

for (const runner of runners()) {
  describe(`descriptors lattice inherits, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('inherited-fd: a socket and a host file lattice was started with are closed before the agent runs; stdio still reaches it', async () => {
      const ws = ownedDir(runner);
      const received: Buffer[] = [];
      const server = createServer((c) => c.on('data', (d: Buffer) => received.push(d)));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const socket: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const hostFile = join(ownedDir(runner), 'host-file');
      const fd = openSync(hostFile, 'a');
      try {
        const stdio = ['pipe', 'pipe', 'pipe', ...Array<'ignore'>(37).fill('ignore'), socket, fd] as const;
        const child = spawn(process.execPath, [runner.cli, 'sandbox', '--home', gate.home, '--workspace', ws, '--', '/usr/bin/python3', '-c', SCRIPT], {
          env: baseEnv({}), uid: runner.uid, gid: runner.gid, cwd: ws, stdio: [...stdio],
        });
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
        child.stdin?.end('stdin from the host\n');
        const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
        assert.equal(status, 0, stderr);
        const seen = JSON.parse(stdout) as { socket: string; file: string; fds: number[]; stdin: string };
        assert.equal(seen.socket, 'EBADF', 'the agent wrote to the inherited socket');
        assert.equal(seen.file, 'EBADF', 'the agent wrote to the inherited host file');
        assert.deepEqual(seen.fds.filter((n) => n > 3), [], `the agent holds fds ${seen.fds.join(', ')}`);
        assert.equal(seen.stdin, 'stdin from the host\n');
        await sleep(200); // anything written would be in the socket's buffer by now
        assert.equal(Buffer.concat(received).length, 0, 'the listener received bytes');
        assert.equal(readFileSync(hostFile, 'utf8'), '');
      } finally {
        closeSync(fd);
        socket.destroy();
        server.close();
      }
    });
  });
}
