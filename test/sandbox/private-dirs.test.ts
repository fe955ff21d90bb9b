/**
 * Your private directories under a read-only mount, for real through `lattice sandbox`, as root and as a normal
 * user: a read-only bind does not stop connect(), so ~/.ssh (an ssh ControlMaster socket), ~/.gnupg, ~/.docker and
 * $XDG_RUNTIME_DIR are covered by an empty directory wherever a mount would show them. The "home" and its sockets
 * are the test's own throwaway stand-ins; the listeners are unix sockets this test started.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gateAs, latticeAs, latticeAsync, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

const SOCKETS = ['.ssh/cm-user@prod:22', '.gnupg/S.gpg-agent', '.docker/run/docker.sock'] as const;

/** A unix socket listener that records what it receives. */
async function listen(path: string, received: string[]): Promise<Server> {
  const server = createServer((s) => s.on('data', (d: Buffer) => received.push(`${path}: ${d.toString()}`)).on('error', () => s.destroy()));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  chmodSync(path, 0o777); // the normal-user runner may connect, had it a way to reach it
  return server;
}

for (const runner of runners()) {
  describe(`your private directories under a read-only mount, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('ro-mount-socket: ~/.ssh, ~/.gnupg, ~/.docker and $XDG_RUNTIME_DIR show empty under --ro-mount; the rest is there', async () => {
      const top = ownedDir(runner);
      const home = mkdirOwned(runner, join(top, 'home', 'u'));
      const runtime = mkdirOwned(runner, join(top, 'run-u'));
      for (const d of ['.ssh', '.gnupg', '.docker/run']) mkdirOwned(runner, join(home, d));
      writeFileSync(join(home, 'notes.txt'), 'readable\n');
      const received: string[] = [];
      const paths = [...SOCKETS.map((s) => join(home, s)), join(runtime, 'bus')];
      const servers = await Promise.all(paths.map((p) => listen(p, received)));
      try {
        const ws = mkdirOwned(runner, join(ownedDir(runner), 'ws'));
        const probe = [
          'import socket, sys',
          `for path in ${JSON.stringify(paths)}:`,
          '    s = socket.socket(socket.AF_UNIX)',
          '    try:',
          '        s.connect(path); s.sendall(b"run: id"); print("connected", path)',
          '    except OSError as e:',
          '        print(type(e).__name__, path)',
        ].join('\n');
        writeFileSync(join(ws, 'probe.py'), probe);
        const script = `python3 ${ws}/probe.py > ${ws}/probe; ls -A ${home}/.ssh ${runtime} > ${ws}/listed; cat ${home}/notes.txt > ${ws}/notes`;
        // Without blocking this process: the listeners answer here.
        const r = await latticeAsync(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--ro-mount', top, '--', '/bin/sh', '-c', script], { HOME: home, XDG_RUNTIME_DIR: runtime });
        assert.equal(r.status, 0, r.stderr);
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(received, [], 'a host socket received the agent\'s command');
        const lines = readFileSync(join(ws, 'probe'), 'utf8').trim().split('\n');
        assert.deepEqual(lines, paths.map((p) => `FileNotFoundError ${p}`));
        assert.equal(readFileSync(join(ws, 'listed'), 'utf8').replace(/^.*:$/gm, '').trim(), '', 'the agent saw inside a private directory');
        assert.equal(readFileSync(join(ws, 'notes'), 'utf8'), 'readable\n', 'the rest of the mount is there');
      } finally {
        for (const s of servers) s.close();
      }
    });

    it('ro-mount-inside-private: a read-only mount inside ~/.ssh is refused, naming it', () => {
      const home = mkdirOwned(runner, join(ownedDir(runner), 'u'));
      const keys = mkdirOwned(runner, join(home, '.ssh', 'keys'));
      mkdirSync(join(home, 'src'));
      const ws = mkdirOwned(runner, join(home, 'src', 'app'));
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--ro-mount', keys, '--', '/bin/sh', '-c', `ls ${keys} > ${ws}/listed`], { HOME: home });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--ro-mount ${keys} may not be given to the agent: it lies inside ${home}/\\.ssh, your private directory`));
    });
  });
}
