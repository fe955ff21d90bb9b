/**
 * The sandbox's parts one by one: the seccomp deny list pinned literally, the generated program's shape, profile
 * validation messages, the CONNECT proxy's address check with a resolver the test controls, and the helper's
 * refusal of a bad plan and its go pipe.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, rejectsWithCode, tempDir } from '../helpers.ts';
import { hostDirs } from '../../sandbox/host-dirs.ts';
import { computePlan, serializePlan } from '../../sandbox/plan.ts';
import { NESTED_DEPTH, findRepositories } from '../../sandbox/repos.ts';
import { loadProfile, listProfiles } from '../../sandbox/profile.ts';
import { connectProxy, credentialProxy, type ProxyDecision } from '../../sandbox/proxy.ts';
import { CLONE_NEW_FLAGS, DENIED, MODE_ARG, OPEN_WITH_MODE, SET_ID_BITS, SYSCALL, seccompProgram } from '../../sandbox/seccomp.ts';
import { clientHello, records } from './tls-records.ts';

describe('seccomp', () => {
  it('denies exactly the pinned list', () => {
    assert.deepEqual(Object.keys(DENIED).sort(), [
      'acct', 'add_key', 'adjtimex', 'bpf', 'chroot', 'clock_adjtime', 'clock_settime', 'delete_module', 'fanotify_init',
      'finit_module', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'init_module', 'io_uring_enter', 'io_uring_register',
      'io_uring_setup', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'migrate_pages',
      'modify_ldt', 'mount', 'mount_setattr', 'move_mount', 'move_pages', 'name_to_handle_at', 'nfsservctl', 'open_by_handle_at', 'open_tree',
      'open_tree_attr', 'perf_event_open', 'pidfd_getfd', 'pivot_root', 'process_madvise', 'process_vm_readv', 'process_vm_writev',
      'ptrace', 'quotactl', 'quotactl_fd', 'reboot', 'request_key', 'setns', 'settimeofday', 'swapoff', 'swapon', 'syslog',
      'umount2', 'unshare', 'uselib', 'userfaultfd', 'vhangup',
    ]);
    assert.equal(CLONE_NEW_FLAGS, 0x7e020080);
  });

  it('checks the mode of exactly the pinned calls for set-id bits, and makes openat2 ENOSYS', () => {
    assert.deepEqual(MODE_ARG, {
      chmod: [90, 1], fchmod: [91, 1], fchmodat: [268, 2], fchmodat2: [452, 2], creat: [85, 1], mkdir: [83, 1], mkdirat: [258, 2],
      mknod: [133, 1], mknodat: [259, 2],
    });
    assert.deepEqual([SYSCALL.open, SYSCALL.openat, SYSCALL.openat2], [2, 257, 437]);
    assert.equal(SET_ID_BITS, 0o6000);
    assert.equal(OPEN_WITH_MODE, 0x400040); // O_CREAT | __O_TMPFILE
  });

  it('starts with the architecture check and x32 kill, and ends in its return values', () => {
    const p = seccompProgram();
    const insn = (i: number) => ({ code: p.readUInt16LE(i * 8), jt: p[i * 8 + 2], jf: p[i * 8 + 3], k: p.readUInt32LE(i * 8 + 4) });
    const n = p.length / 8;
    assert.deepEqual(insn(0), { code: 0x20, jt: 0, jf: 0, k: 4 }); // load arch
    assert.equal(insn(1).k, 0xc000003e); // x86-64 or…
    assert.equal(insn(1 + 1 + (insn(1).jf ?? 0)).k, 0x80000000); // …kill
    assert.deepEqual(insn(3), { code: 0x35, jt: insn(3).jt, jf: 0, k: 0x40000000 }); // x32 → kill
    assert.deepEqual([insn(n - 5).k, insn(n - 4).k, insn(n - 3).k, insn(n - 2).k, insn(n - 1).k], [0x50061, 0x7fff0000, 0x50001, 0x50026, 0x80000000]);
    for (const nr of Object.values(DENIED)) {
      const at = [...Array(n).keys()].find((i) => insn(i).code === 0x15 && insn(i).k === nr && i > 3);
      assert.ok(at !== undefined, `syscall ${nr} is not in the program`);
      assert.equal(insn(at + 1 + (insn(at).jt ?? 0)).k, 0x50001, `syscall ${nr} does not return EPERM`);
    }
  });
});

describe('profiles', () => {
  it('ships the built-in profiles, each valid', () => {
    const home = tempDir();
    assert.deepEqual(listProfiles(home), ['aider', 'claude-code', 'codex', 'cursor', 'default', 'opencode']);
    const claude = loadProfile(home, 'claude-code');
    assert.deepEqual(claude.command, ['claude']);
    assert.ok(claude.protect.includes('.git'), 'extends joins lists');
    assert.equal(claude.credentials['anthropic']?.key_source, 'env:ANTHROPIC_API_KEY');
  });

  it('profile-without-extends: the default protect list is a floor for every profile, which can only add to it', () => {
    const home = tempDir();
    const file = join(home, 'mine.toml');
    writeFileSync(file, '[sandbox]\ndescription = "mine"\nprotect = [".husky"]\n');
    const floor = loadProfile(home, 'default').protect;
    assert.ok(floor.includes('.git'));
    assert.deepEqual(loadProfile(home, undefined, file).protect, [...floor, '.husky']);
  });

  it('nested-repository: finds .git directories and files and bare repositories down to NESTED_DEPTH (3) directories, outermost first, none through a link', () => {
    const ws = tempDir();
    for (const d of ['.git/objects', 'a/.git', 'a/b/c/.git', 'a/b/c/d/.git', 'x.git/objects', 'x.git/refs', 'wt', '.bare/worktrees/main']) mkdirSync(join(ws, d), { recursive: true });
    writeFileSync(join(ws, 'x.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(ws, 'wt', '.git'), 'gitdir: ../.bare/worktrees/main\n');
    mkdirSync(join(ws, 'sub'));
    writeFileSync(join(ws, 'sub', '.git'), 'gitdir: ../.bare\n');
    symlinkSync(join(ws, 'a'), join(ws, 'link'));
    assert.equal(NESTED_DEPTH, 3);
    assert.deepEqual(findRepositories(ws, []), {
      gitdirs: ['.bare', '.git', 'x.git', 'a/.git', 'a/b/c/.git'],
      gitfiles: ['sub/.git', 'wt/.git'],
      // Where git runs and which gitdir it uses there: a bare repository is its own top.
      checkouts: [
        { top: '', gitdir: join(ws, '.git') }, { top: 'a', gitdir: join(ws, 'a/.git') }, { top: 'a/b/c', gitdir: join(ws, 'a/b/c/.git') },
        { top: 'sub', gitdir: join(ws, '.bare') }, { top: 'wt', gitdir: join(ws, '.bare/worktrees/main') }, { top: 'x.git', gitdir: join(ws, 'x.git') },
      ],
    });
  });

  it('nested-repository: a gitdir whose name starts with two dots (gitdir: ./..bare) lies in the workspace and is protected, not taken for one outside it', () => {
    const ws = tempDir();
    mkdirSync(join(ws, '..bare'));
    writeFileSync(join(ws, '.git'), 'gitdir: ./..bare\n');
    const found = findRepositories(ws, []);
    assert.deepEqual(found.gitdirs, ['..bare']);
    assert.deepEqual(found.checkouts, [{ top: '', gitdir: join(ws, '..bare') }]);
  });

  it('names the offending key', async () => {
    const dir = tempDir();
    const bad = (text: string) => {
      const file = join(dir, `p${Math.random().toString(36).slice(2)}.toml`);
      writeFileSync(file, text);
      return () => Promise.resolve().then(() => loadProfile(dir, undefined, file));
    };
    await rejectsWithCode(bad('[sandbox]\ncomand = ["x"]\n')(), 'PROFILE_INVALID', /unknown key sandbox\.comand/);
    await rejectsWithCode(bad('[sandbox]\nallow_hosts = ["http://x.com"]\n')(), 'PROFILE_INVALID', /sandbox\.allow_hosts\.0/);
    await rejectsWithCode(bad('[sandbox]\nprotect = ["../etc"]\n')(), 'PROFILE_INVALID', /sandbox\.protect\.0/);
    // home_dirs are walked one name at a time below the private home: no empty, `.` or `..` names.
    for (const dirs of ['".config/../x"', '"a//b"', '"./a"', '"/abs"', '"a/"']) {
      await rejectsWithCode(bad(`[sandbox]\nhome_dirs = [${dirs}]\n`)(), 'PROFILE_INVALID', /sandbox\.home_dirs\.0/);
    }
    const fine = join(dir, 'fine.toml');
    writeFileSync(fine, '[sandbox]\nhome_dirs = [".local/share/x", ".a..b"]\n');
    assert.deepEqual(loadProfile(dir, undefined, fine).homeDirs, ['.local/share/x', '.a..b']);
    // A profile's name is its private home's directory name.
    await rejectsWithCode(Promise.resolve().then(() => loadProfile(dir, '../x')), 'PROFILE_INVALID', /not a profile name/);
    await rejectsWithCode(bad('[sandbox.agent.credentials.a]\nupstream = "http://api.example.com"\nheader = "x"\nformat = "{key}"\nkey_source = "env:K"\n')(), 'PROFILE_INVALID', /must be https/);
    await rejectsWithCode(bad('[sandbox.agent.credentials.a]\nupstream = "https://x.com"\nheader = "x"\nformat = "nokey"\nkey_source = "env:K"\n')(), 'PROFILE_INVALID', /format/);
    await rejectsWithCode(bad('extends = "nope"\n')(), 'PROFILE_NOT_FOUND', /no sandbox profile named 'nope'/);
    await rejectsWithCode(Promise.resolve().then(() => loadProfile(dir, 'missing')), 'PROFILE_NOT_FOUND');
  });
});

describe('CONNECT proxy address check', () => {
  async function connectThrough(resolved: string[], host = 'api.example.com'): Promise<{ status: number; decisions: ProxyDecision[] }> {
    const decisions: ProxyDecision[] = [];
    // Where an allowed tunnel really goes: a loopback listener of the test's own, never the resolved address.
    const target = createServer((c) => c.end());
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const server = connectProxy({
      connectTo: () => connect({ host: '127.0.0.1', port: (target.address() as AddressInfo).port }),
      allowHosts: ['api.example.com'],
      routedHosts: [],
      onDecision: (d) => decisions.push(d),
      lookup: () => Promise.resolve(resolved.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method: 'CONNECT', path: `${host}:443` });
        req.on('connect', (res, socket) => {
          // An open tunnel is decided once its ClientHello has named the host (see proxy.test.ts for the SNI rule).
          if (res.statusCode === 200) socket.write(records(clientHello({ names: [host] })));
          const done = () => {
            socket.destroy();
            resolve(res.statusCode ?? 0);
          };
          const wait = () => (decisions.length > 0 ? done() : setTimeout(wait, 5));
          wait();
        });
        req.on('error', reject);
        req.end();
      });
      return { status, decisions };
    } finally {
      server.close();
      target.close();
    }
  }

  for (const [name, addresses] of [
    ['loopback', ['127.0.0.1']], ['private', ['10.1.2.3']], ['link-local metadata', ['169.254.169.254']], ['IPv6 loopback', ['::1']],
    ['IPv4-mapped loopback', ['::ffff:127.0.0.1']], ['unique-local', ['fd00::1']], ['one private among public', ['93.184.216.34', '192.168.1.1']],
  ] as const) {
    it(`refuses an allowlisted name that resolves to ${name}, and records why`, async () => {
      const { status, decisions } = await connectThrough([...addresses]);
      assert.equal(status, 403);
      assert.equal(decisions[0]?.decision, 'deny');
      assert.match(decisions[0]?.reason ?? '', /non-public address/);
    });
  }

  it('tunnels to a public address it checked, and records the address', async () => {
    const { status, decisions } = await connectThrough(['93.184.216.34', '2606:2800:220:1::1']);
    assert.equal(status, 200);
    assert.deepEqual([decisions[0]?.decision, decisions[0]?.address], ['allow', '93.184.216.34']);
  });
});

const HELPER = join(ROOT, 'dist', 'lattice-sandbox');

describe('the helper and the credential proxy refuse malformed input', () => {
  it('the helper stops at a bad plan before changing anything, and says why', () => {
    const dir = tempDir();
    for (const [plan, reason] of [['bogus\0x\0', /unknown plan op 'bogus'/], ['bind\0/a\0', /'bind' is missing arguments/], ['host\0x', /not NUL-terminated/]] as const) {
      const file = join(dir, 'plan');
      writeFileSync(file, plan);
      const r = spawnSync(HELPER, [], { stdio: ['ignore', 'ignore', 'pipe', openSync(file, 'r'), 'pipe', 'pipe'], encoding: 'utf8' });
      assert.equal(r.status, 125);
      assert.match(r.stderr, reason);
    }
  });

  it('the helper runs the command only after the go: EOF on fd 5 ends the run first, "g" lets it run', () => {
    const dir = tempDir();
    const workspace = join(dir, 'ws');
    const runtimeDir = join(dir, 'run');
    for (const d of [workspace, runtimeDir, join(dir, 'home')]) mkdirSync(d);
    writeFileSync(join(runtimeDir, 'gate.sock'), '');
    const plan = computePlan({
      profile: loadProfile(dir, 'default'), workspace, home: join(dir, 'home'), homeInside: join(dir, 'home'), runtimeDir, gateSocket: join(runtimeDir, 'gate.sock'), hostDirs: hostDirs(join(dir, 'lattice-home'), {}),
      roMounts: [], rwMounts: [], passEnv: [], network: false, routes: [], allowDegraded: false, argv: ['/bin/sh', '-c', `touch ${workspace}/ran`], hostEnv: {},
      uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, repos: { gitdirs: [], gitfiles: [], checkouts: [] }, configured: [],
    });
    writeFileSync(join(dir, 'plan'), serializePlan(plan));
    const run = (go: string) => {
      writeFileSync(join(dir, 'go'), go);
      return spawnSync(HELPER, [], { stdio: ['ignore', 'ignore', 'pipe', openSync(join(dir, 'plan'), 'r'), 'pipe', openSync(join(dir, 'go'), 'r')], encoding: 'utf8' });
    };
    const withheld = run('');
    assert.equal(withheld.status, 125, withheld.stderr);
    assert.equal(existsSync(join(workspace, 'ran')), false, 'the command ran without the go');
    const given = run('g');
    assert.equal(given.status, 0, given.stderr);
    assert.equal(existsSync(join(workspace, 'ran')), true);
  });

  it('the credential proxy forwards only origin-form requests', async () => {
    const decisions: ProxyDecision[] = [];
    const server = await credentialProxy({ route: 't', upstream: new URL('http://127.0.0.1:9/'), header: 'x-api-key', value: 'k', onDecision: (d) => decisions.push(d) });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: 'http://evil.example.com/steal' }, (res) => resolve(res.statusCode ?? 0));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 400);
      assert.equal(decisions[0]?.decision, 'deny');
    } finally {
      server.close();
    }
  });

  it('the credential proxy speaks TLS to an https upstream (to a plain listener the handshake fails, the key is never sent) and plain HTTP to an http one', async () => {
    // A loopback listener of the test's own that records the bytes it receives and answers plain HTTP.
    const received: Buffer[] = [];
    const upstream = createServer((socket) => {
      socket.on('data', (d: Buffer) => {
        received.push(d);
        if (d[0] === 0x16) socket.destroy(); // a TLS ClientHello: this listener speaks no TLS
        else if (d.includes('\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const through = async (scheme: string) => {
      const decisions: ProxyDecision[] = [];
      const proxy = await credentialProxy({ route: 't', upstream: new URL(`${scheme}://127.0.0.1:${upstreamPort}/`), header: 'x-api-key', value: 'sk-real-key', onDecision: (d) => decisions.push(d) });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port, path: '/v1/x' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
        return { status, decision: decisions[0] };
      } finally {
        proxy.close();
        proxy.closeAllConnections();
      }
    };
    try {
      const tls = await through('https');
      assert.equal(tls.status, 502);
      assert.equal(tls.decision?.decision, 'deny');
      assert.match(tls.decision?.reason ?? '', /upstream failed/);
      assert.equal(Buffer.concat(received).includes('sk-real-key'), false, 'the key went out over plain text');
      assert.equal(Buffer.concat(received)[0], 0x16, 'the first byte the upstream saw is a TLS handshake record');
      received.length = 0;
      const plain = await through('http');
      assert.equal(plain.status, 200);
      assert.equal(Buffer.concat(received).includes('x-api-key: sk-real-key'), true);
    } finally {
      upstream.close();
    }
  });
});
