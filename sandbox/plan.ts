/**
 * The sandbox plan: everything the helper does, decided here and frozen before it starts. The helper
 * (sandbox/helper/lattice-sandbox.c) only executes it.
 *
 * Inside, the agent sees a tmpfs root holding: system directories read-only, an allowlist of /etc, a generated
 * passwd/group, a minimal /dev (null, zero, full, random, urandom, tty, a private devpts, /dev/shm), its own /proc
 * (its kernel knobs read-only, what shows the host's kernel masked), /tmp, the workspace read-write at its host path
 * (its protected paths read-only, sandbox/protect.ts), a private home persisted per profile, and /run/lattice (the
 * gate socket, its credential, the proxies' sockets). Nothing else of the host exists there, and lattice's own
 * directories are masked wherever a bind would show them (sandbox/host-dirs.ts).
 */
import { accessSync, constants, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LatticeError } from '../core/errors.ts';
import { inBinary } from '../core/runtime.ts';
import { type HostDirs, hiddenDirsInside, readableRefusal, writableRefusal } from './host-dirs.ts';
import type { SandboxProfile } from './profile.ts';
import { protectOps } from './protect.ts';
import type { Repositories } from './repos.ts';
import { seccompProgram } from './seccomp.ts';
import { initProgram, relayProgram } from './seccomp-helper.ts';

/** Where lattice's own files appear inside. */
export const INSIDE = {
  dir: '/run/lattice',
  gateSocket: '/run/lattice/gate.sock',
  credential: '/run/lattice/credential.json',
  proxySocket: '/run/lattice/proxy.sock',
  routeSocket: (route: string) => `/run/lattice/route-${route}.sock`,
} as const;

/** Loopback ports inside: the HTTPS proxy, then one per credential route in name order. */
export const PROXY_PORT = 47080;
export const ROUTE_PORT_BASE = 47081;

export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'] as const;
/** What of /etc is visible: name resolution, libraries, certificates, locale and shell defaults; no secrets. */
export const ETC_ALLOWLIST = [
  'alternatives', 'bash.bashrc', 'ca-certificates', 'ca-certificates.conf', 'debian_version', 'gai.conf', 'gitconfig',
  'host.conf', 'hosts', 'inputrc', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'locale.alias', 'localtime', 'mime.types',
  'nsswitch.conf', 'os-release', 'profile', 'protocols', 'resolv.conf', 'services', 'ssl/certs', 'ssl/openssl.cnf',
  'terminfo', 'timezone',
] as const;
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'] as const;
/** /proc entries bound read-only over themselves (the kernel's knobs), as runc and bubblewrap do. */
export const PROC_READ_ONLY = ['bus', 'fs', 'irq', 'sys', 'sysrq-trigger'] as const;
/** /proc entries masked (an empty read-only directory, or an unusable /dev/null): they show the host's kernel. */
export const PROC_MASKED = ['acpi', 'asound', 'interrupts', 'kcore', 'keys', 'latency_stats', 'sched_debug', 'scsi', 'timer_list', 'timer_stats'] as const;
/** The host environment variables every agent gets (when set); a profile's pass_env adds to them. */
export const BASE_ENV = ['PATH', 'TERM', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'COLORTERM', 'TZ', 'NO_COLOR', 'FORCE_COLOR'] as const;

// Landlock access rights (include/uapi/linux/landlock.h).
export const LL = {
  EXECUTE: 1, WRITE_FILE: 2, READ_FILE: 4, READ_DIR: 8, REMOVE_DIR: 16, REMOVE_FILE: 32, MAKE_CHAR: 64, MAKE_DIR: 128,
  MAKE_REG: 256, MAKE_SOCK: 512, MAKE_FIFO: 1024, MAKE_BLOCK: 2048, MAKE_SYM: 4096, REFER: 8192, TRUNCATE: 16384,
  IOCTL_DEV: 32768,
} as const;
const HANDLED_FS = 0xffff;
const READ = LL.EXECUTE | LL.READ_FILE | LL.READ_DIR;
/** Read-write: everything but creating device nodes (never granted anywhere). */
const WRITE = READ | LL.WRITE_FILE | LL.REMOVE_DIR | LL.REMOVE_FILE | LL.MAKE_DIR | LL.MAKE_REG | LL.MAKE_SOCK | LL.MAKE_FIFO | LL.MAKE_SYM | LL.REFER | LL.TRUNCATE;
const DEV = LL.READ_FILE | LL.READ_DIR | LL.WRITE_FILE | LL.TRUNCATE | LL.IOCTL_DEV;
const NET_BIND_TCP = 1;
const NET_CONNECT_TCP = 2;
const SCOPE_ABSTRACT_UNIX = 1;
const SCOPE_SIGNAL = 2;

export type FsOp =
  | { readonly op: 'tmpfs'; readonly dst: string; readonly mode: string }
  | { readonly op: 'dir'; readonly dst: string; readonly mode: string }
  /** `dev`: a host device node, device access kept, always read-only (its mode, owner and times cannot change). */
  | { readonly op: 'bind'; readonly src: string; readonly dst: string; readonly mode: 'ro' | 'rw' | 'dev' }
  | { readonly op: 'proc'; readonly dst: string }
  | { readonly op: 'devpts'; readonly dst: string }
  | { readonly op: 'symlink'; readonly target: string; readonly dst: string }
  | { readonly op: 'file'; readonly dst: string; readonly mode: string; readonly content: string }
  /** The object at dst (inside), when there, bound over itself. */
  | { readonly op: 'rebind'; readonly dst: string; readonly mode: 'ro' | 'rw' }
  /** When there: an empty read-only directory, or an unusable /dev/null, over dst. */
  | { readonly op: 'mask'; readonly dst: string }
  /** A workspace path, when there, read-only where it is; a link on the way refuses the run (sandbox/protect.ts). */
  | { readonly op: 'protect'; readonly workspace: string; readonly path: string }
  /** A repository's gitdir (`path`, in the workspace): read-only but for `writable`; `masked` names made when absent. */
  | {
      readonly op: 'repo';
      readonly workspace: string;
      readonly path: string;
      readonly writable: readonly string[];
      readonly masked: readonly { readonly name: string; readonly type: 'dir' | 'file'; readonly content: string }[];
    };

export interface SandboxPlan {
  readonly uid: { readonly inside: number; readonly outside: number };
  readonly gid: { readonly inside: number; readonly outside: number };
  readonly hostname: string;
  readonly fs: readonly FsOp[];
  readonly relays: readonly { readonly port: number; readonly socket: string }[];
  readonly landlock: {
    readonly handledFs: number;
    readonly handledNet: number;
    readonly scoped: number;
    readonly rules: readonly { readonly path: string; readonly access: number }[];
    readonly allowDegraded: boolean;
  };
  readonly seccomp: Buffer;
  /** The helper's own processes inside, once set up: PID 1 and the relays (sandbox/seccomp-helper.ts). */
  readonly helperSeccomp: { readonly init: Buffer; readonly relay: Buffer };
  readonly cwd: string;
  readonly env: readonly string[];
  readonly argv: readonly string[];
  /** Mounts asked for whose host path does not exist (bound only when present). */
  readonly skipped: readonly string[];
}

export interface PlanInput {
  readonly profile: SandboxProfile;
  /** Real path of the workspace (read-write). */
  readonly workspace: string;
  /** Host directory persisted as the agent's home. */
  readonly home: string;
  /** $HOME inside (the host user's home path, so absolute paths in tools' settings keep working). */
  readonly homeInside: string;
  /** Host directory bound at /run/lattice (credential, proxy sockets, an empty gate.sock mount point). */
  readonly runtimeDir: string;
  readonly gateSocket: string;
  /** The repositories in the workspace (sandbox/repos.ts), protected when the profile protects `.git`. */
  readonly repos: Repositories;
  /** What the repositories' configuration includes or takes hooks from in the workspace (sandbox/git-config.ts). */
  readonly configured: readonly string[];
  /** Your home, lattice's and your runtime directories: what the agent may not write, what is masked inside. */
  readonly hostDirs: HostDirs;
  /** Files lattice generates into the sandbox's root (read-only inside, made afresh at each start). */
  readonly files?: readonly { readonly path: string; readonly content: string }[];
  /** Variables lattice sets for what it generated (after the profile's own). */
  readonly env?: Readonly<Record<string, string>>;
  readonly roMounts: readonly string[];
  readonly rwMounts: readonly string[];
  readonly passEnv: readonly string[];
  readonly network: boolean;
  readonly routes: readonly string[];
  readonly allowDegraded: boolean;
  readonly argv: readonly string[];
  readonly hostEnv: NodeJS.ProcessEnv;
  readonly uid: number;
  readonly gid: number;
}

function kind(path: string): 'dir' | 'symlink' | 'other' | 'missing' {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing'; // "bind only paths that exist": a missing path is listed in plan.skipped
  }
}

export function computePlan(input: PlanInput): SandboxPlan {
  const fs: FsOp[] = [];
  const rules: { path: string; access: number }[] = [{ path: '/', access: LL.READ_DIR }];
  const skipped: string[] = [];
  const bind = (src: string, dst: string, mode: 'ro' | 'rw', access: number, refusal?: (real: string) => string | null) => {
    if (kind(src) === 'missing') return void skipped.push(src);
    // Real paths: the helper opens every bind source without following any link (a link swapped in later fails).
    const real = realpathSync(src);
    const why = refusal?.(real) ?? null;
    if (why !== null) throw new LatticeError('INVALID_ARGUMENT', `${mode === 'rw' ? '--rw-mount' : '--ro-mount'} ${src} may not be given to the agent: ${why}; mount a directory of the project instead`);
    fs.push({ op: 'bind', src: real, dst, mode });
    rules.push({ path: dst, access });
  };

  fs.push({ op: 'tmpfs', dst: '/tmp', mode: '1777' });
  rules.push({ path: '/tmp', access: WRITE });
  for (const dir of SYSTEM_DIRS) {
    const k = kind(dir);
    if (k === 'symlink') fs.push({ op: 'symlink', target: readlinkSync(dir), dst: dir });
    else if (k === 'dir') bind(dir, dir, 'ro', READ);
  }
  // A Node runtime outside /usr (nvm, a tarball) is made visible, so `#!/usr/bin/env node` agents run.
  const node = agentNode(input.hostEnv['PATH']);
  const nodePrefix = node === null ? null : dirname(dirname(node));
  if (nodePrefix !== null && !SYSTEM_DIRS.some((d) => nodePrefix === d || nodePrefix.startsWith(`${d}/`))) bind(nodePrefix, nodePrefix, 'ro', READ);
  for (const name of ETC_ALLOWLIST) if (kind(`/etc/${name}`) !== 'missing') bind(`/etc/${name}`, `/etc/${name}`, 'ro', READ);
  const user = input.hostEnv['USER'] ?? 'agent';
  const uid = input.uid === 0 ? 1000 : input.uid;
  const gid = input.gid === 0 ? 1000 : input.gid;
  fs.push(
    { op: 'file', dst: '/etc/passwd', mode: '644', content: `root:x:0:0:root:/root:/bin/sh\n${user === 'root' ? 'agent' : user}:x:${uid}:${gid}::${input.homeInside}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n` },
    { op: 'file', dst: '/etc/group', mode: '644', content: `root:x:0:\n${user === 'root' ? 'agent' : user}:x:${gid}:\nnogroup:x:65534:\n` },
    { op: 'file', dst: '/etc/hostname', mode: '644', content: 'lattice-sandbox\n' },
    ...(input.files ?? []).map((f): FsOp => ({ op: 'file', dst: f.path, mode: '644', content: f.content })),
  );
  // The files lattice generates are there to be read (the user's name, the MCP server's entry).
  for (const f of fs) if (f.op === 'file') rules.push({ path: f.dst, access: LL.READ_FILE });

  fs.push({ op: 'tmpfs', dst: '/dev', mode: '755' });
  for (const d of DEVICES) fs.push({ op: 'bind', src: `/dev/${d}`, dst: `/dev/${d}`, mode: 'dev' });
  fs.push(
    { op: 'devpts', dst: '/dev/pts' },
    { op: 'symlink', target: 'pts/ptmx', dst: '/dev/ptmx' },
    { op: 'symlink', target: '/proc/self/fd', dst: '/dev/fd' },
    { op: 'symlink', target: '/proc/self/fd/0', dst: '/dev/stdin' },
    { op: 'symlink', target: '/proc/self/fd/1', dst: '/dev/stdout' },
    { op: 'symlink', target: '/proc/self/fd/2', dst: '/dev/stderr' },
    { op: 'tmpfs', dst: '/dev/shm', mode: '1777' },
    { op: 'proc', dst: '/proc' },
    ...PROC_READ_ONLY.map((p): FsOp => ({ op: 'rebind', dst: `/proc/${p}`, mode: 'ro' })),
    ...PROC_MASKED.map((p): FsOp => ({ op: 'mask', dst: `/proc/${p}` })),
  );
  rules.push({ path: '/dev', access: DEV }, { path: '/dev/shm', access: WRITE }, { path: '/proc', access: READ });

  // lattice's exits: the runtime directory read-only, the gate socket over its (empty) mount point.
  fs.push({ op: 'bind', src: realpathSync(input.runtimeDir), dst: INSIDE.dir, mode: 'ro' }, { op: 'bind', src: realpathSync(input.gateSocket), dst: INSIDE.gateSocket, mode: 'ro' });
  rules.push({ path: INSIDE.dir, access: READ });

  // The private home, then the workspace (which may lie below it), then the profile's and the flags' mounts, then
  // the workspace's protected paths (over any mount), then lattice's directories masked wherever a bind shows them.
  bind(input.home, input.homeInside, 'rw', WRITE);
  bind(input.workspace, input.workspace, 'rw', WRITE);
  const dirs = input.hostDirs;
  const expand = (p: string) => resolve(p.startsWith('~/') ? join(input.hostEnv['HOME'] ?? '/', p.slice(2)) : p);
  for (const p of input.roMounts) bind(expand(p), throughSystemLinks(expand(p), fs), 'ro', READ, (real) => readableRefusal(real, dirs));
  for (const p of input.rwMounts) bind(expand(p), throughSystemLinks(expand(p), fs), 'rw', WRITE, (real) => writableRefusal(real, dirs));
  fs.push(...protectOps(input.workspace, input.profile.protect, input.repos, input.configured));
  const masks = fs.flatMap((f) => (f.op === 'bind' ? hiddenDirsInside(f.src, f.dst, dirs) : []));
  fs.push(...[...new Set(masks)].map((dst): FsOp => ({ op: 'mask', dst })));

  const relays = input.network
    ? [{ port: PROXY_PORT, socket: INSIDE.proxySocket }, ...input.routes.map((r, i) => ({ port: ROUTE_PORT_BASE + i, socket: INSIDE.routeSocket(r) }))]
    : [];
  return deepFreeze({
    uid: { inside: uid, outside: input.uid },
    gid: { inside: gid, outside: input.gid },
    hostname: 'lattice-sandbox',
    fs,
    relays,
    landlock: {
      handledFs: HANDLED_FS,
      // Without network the agent may not even use loopback TCP; with it, the network namespace (only `lo`, and the
      // relays) is the boundary, and dev servers may bind any port.
      handledNet: input.network ? 0 : NET_BIND_TCP | NET_CONNECT_TCP,
      scoped: SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL,
      rules,
      allowDegraded: input.allowDegraded,
    },
    seccomp: seccompProgram(),
    helperSeccomp: { init: initProgram(), relay: relayProgram() },
    cwd: input.workspace,
    env: environment(input, relays),
    argv: input.argv,
    skipped,
  });
}

/**
 * The helper makes mount points without following any symlink, so a destination below one of the root's own links
 * (`/lib -> usr/lib` on a merged-/usr system) is named by where that link leads.
 */
function throughSystemLinks(path: string, fs: readonly FsOp[]): string {
  for (const op of fs) {
    if (op.op !== 'symlink' || !(SYSTEM_DIRS as readonly string[]).includes(op.dst)) continue;
    if (path === op.dst || path.startsWith(`${op.dst}/`)) return resolve('/', op.target) + path.slice(op.dst.length);
  }
  return path;
}

function environment(input: PlanInput, relays: readonly { port: number }[]): string[] {
  const env = new Map<string, string>();
  for (const name of [...BASE_ENV, ...input.profile.passEnv, ...input.passEnv]) {
    const value = input.hostEnv[name];
    if (value !== undefined) env.set(name, value);
  }
  env.set('HOME', input.homeInside);
  env.set('USER', input.hostEnv['USER'] === 'root' || input.hostEnv['USER'] === undefined ? 'agent' : input.hostEnv['USER']);
  env.set('LOGNAME', env.get('USER') ?? 'agent');
  env.set('SHELL', '/bin/sh');
  if (!env.has('PATH')) env.set('PATH', '/usr/local/bin:/usr/bin:/bin');
  for (const [k, v] of Object.entries(input.profile.env)) env.set(k, v);
  for (const [k, v] of Object.entries(input.env ?? {})) env.set(k, v);
  env.set('LATTICE_CREDENTIAL', INSIDE.credential);
  env.set('LATTICE_SANDBOX', '1');
  if (input.network) {
    const proxy = `http://127.0.0.1:${PROXY_PORT}`;
    for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'npm_config_https_proxy', 'npm_config_proxy']) env.set(k, proxy);
    env.set('NO_PROXY', '127.0.0.1,localhost,::1');
    env.set('no_proxy', '127.0.0.1,localhost,::1');
    input.routes.forEach((name, i) => {
      const route = input.profile.credentials[name];
      const port = relays[i + 1]?.port;
      if (route === undefined || port === undefined) return;
      if (route.base_url_env !== undefined) env.set(route.base_url_env, `http://127.0.0.1:${port}`);
      if (route.placeholder_env !== undefined) env.set(route.placeholder_env, 'lattice-credential-proxy-injects-the-real-key');
    });
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The plan as the helper reads it on fd 3: NUL-terminated strings, each op's name followed by its arguments. */
export function serializePlan(plan: SandboxPlan): Buffer {
  const out: string[] = [];
  const op = (...parts: (string | number)[]) => {
    for (const p of parts) {
      const s = String(p);
      if (s.includes('\0')) throw new Error(`a NUL byte in the sandbox plan (${parts[0]})`);
      out.push(s);
    }
  };
  op('uid', plan.uid.inside, plan.uid.outside);
  op('gid', plan.gid.inside, plan.gid.outside);
  op('host', plan.hostname);
  let listed = false;
  for (const f of plan.fs) {
    if (f.op === 'tmpfs' || f.op === 'dir') op(f.op, f.dst, f.mode);
    else if (f.op === 'bind') op('bind', f.src, f.dst, f.mode);
    else if (f.op === 'proc' || f.op === 'devpts') op(f.op, f.dst);
    else if (f.op === 'symlink') op('symlink', f.target, f.dst);
    else if (f.op === 'file') op('file', f.dst, f.mode, f.content);
    else if (f.op === 'rebind') op('rebind', f.dst, f.mode);
    else if (f.op === 'mask') op('mask', f.dst);
    else if (f.op === 'protect') op('protect', f.workspace, f.path);
    else {
      // The helper reads these lists for every repository from wherever they are in the plan: they are sent once.
      if (!listed) for (const name of f.writable) op('repo-writable', name);
      if (!listed) for (const m of f.masked) op('repo-mask', m.name, m.type, m.content);
      listed = true;
      op('repo', f.workspace, f.path);
    }
  }
  for (const r of plan.relays) op('relay', r.port, r.socket);
  const l = plan.landlock;
  op('llhandle', l.handledFs.toString(16), l.handledNet.toString(16), l.scoped.toString(16));
  for (const r of l.rules) op('ll', r.path, r.access.toString(16));
  op('degraded', l.allowDegraded ? 1 : 0);
  op('seccomp', plan.seccomp.toString('hex'));
  op('seccomp-init', plan.helperSeccomp.init.toString('hex'));
  op('seccomp-relay', plan.helperSeccomp.relay.toString('hex'));
  op('cwd', plan.cwd);
  for (const e of plan.env) op('env', e);
  for (const a of plan.argv) op('argv', a);
  return Buffer.from(`${out.join('\0')}\0`, 'utf8');
}

/**
 * The Node agents run on: the one running lattice, or for the single binary (which is no Node an agent can use)
 * the first `node` on the user's PATH; null when there is none.
 */
function agentNode(path: string | undefined): string | null {
  if (!inBinary()) return realpathSync(process.execPath);
  for (const dir of (path ?? '').split(':').filter((d) => isAbsolute(d))) {
    try {
      accessSync(join(dir, 'node'), constants.X_OK);
      return realpathSync(join(dir, 'node'));
    } catch (error) {
      if (!['ENOENT', 'EACCES', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
  }
  return null;
}
