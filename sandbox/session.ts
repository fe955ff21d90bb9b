/**
 * One `lattice sandbox` run: start the helper (it reports the kernel's Landlock ABI and waits for its plan), compute
 * the plan and send it; then, while the helper builds the sandbox, enroll a sandbox identity (recording the start)
 * and start the proxies; give the go; record every proxy decision and the exit in the ledger (through the gate's
 * admin socket). The identity is revoked and the runtime directory removed when the agent exits. Nothing the plan
 * does not need (node:crypto, node:http, the proxies) loads before the plan is sent, so that work runs beside the
 * helper's, not in front of it (`npm run bench:sandbox` measures what is left).
 *
 * Fail closed: a missing gate, a credential that cannot be resolved, a helper that reports a setup error, or a
 * start event the gate cannot record all stop the run before (or kill) the agent; nothing runs unconfined.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, realpathSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { constants, homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { generateEd25519Jwks, randomId } from '../core/crypto/index.ts';
import { LatticeError, describeError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs-atomic.ts';
import { ensurePrivateDir, type HomePaths, runPaths } from '../core/home.ts';
import { MAX_SANDBOX_EVENTS } from '../core/gate/limits.ts';
import { configuredPaths } from './git-config.ts';
import { type GitSnapshot, checkBeforeSession, cleanAfterSession } from './git-state.ts';
import { Helper } from './helper-process.ts';
import { findRepositories } from './repos.ts';
import { type HostDirs, hostDirs, writableRefusal } from './host-dirs.ts';
import { INSIDE, PROXY_PORT, ROUTE_PORT_BASE, computePlan, type SandboxPlan } from './plan.ts';
import type { SandboxProfile } from './profile.ts';
import type { ProxyDecision } from './proxy.ts';
import { credentialFor, type EnrollmentReply } from '../sdk/credential.ts';
import { selfCommand, selfRoot } from '../core/runtime.ts';
import type { DirHandle } from '../core/dir-handle.ts';
import { mcpWiring, openPrivateHome, writeHomeMcpConfig } from './agent-home.ts';

/** The operator's admin socket, as the CLI reaches it. */
export type GateAdmin = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export interface SandboxRun {
  readonly paths: HomePaths;
  readonly profile: SandboxProfile;
  readonly workspace: string;
  readonly allowHosts: readonly string[];
  readonly passEnv: readonly string[];
  readonly roMounts: readonly string[];
  readonly rwMounts: readonly string[];
  readonly network: boolean;
  readonly allowDegraded: boolean;
  /** The command; the profile's when empty. */
  readonly argv: readonly string[];
  readonly jsonStatus?: string;
  readonly helper: string;
  readonly admin: GateAdmin;
  /** POSTs to the admin socket and holds the request open until released: its first answer (core/gate/sandbox-routes.ts). */
  readonly openHeld: <T>(path: string, body: unknown) => Promise<{ readonly value: T; release(): void }>;
  /** Reads a secret for `key_source = "secret:NAME"`. */
  readonly secret: (name: string) => Promise<string>;
  readonly env?: NodeJS.ProcessEnv;
  /** Where progress and warnings go (stderr). */
  readonly log: (line: string) => void;
}

/** The agent's host uid is yours: as root, only Landlock keeps it from root-owned kernel files inside (/proc/sys). */
export function checkDegraded(allowDegraded: boolean, uid: number): void {
  if (allowDegraded && uid === 0) {
    throw new LatticeError('INVALID_ARGUMENT', '--allow-degraded is refused as root: without Landlock the agent, whose host uid would be 0, could write kernel settings under /proc; run lattice sandbox as a normal user, or on a kernel with Landlock (Linux 5.13+, landlock in the LSM list)');
  }
}

/** The workspace: a real, existing directory the agent may be given to write (sandbox/host-dirs.ts says which). */
export function checkWorkspace(dir: string, dirs: HostDirs): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', `the workspace ${dir} does not exist: ${describeError(error)}`);
  }
  const why = writableRefusal(real, dirs);
  if (why !== null) throw new LatticeError('INVALID_ARGUMENT', `the workspace may not be ${real}: ${why}; run lattice sandbox in a project directory or pass --workspace DIR`);
  return real;
}

async function resolveKey(run: SandboxRun, route: string, source: string): Promise<string> {
  const env = run.env ?? process.env;
  const [kind, name = ''] = source.split(/:(.*)/s);
  if (kind === 'env') {
    const value = env[name];
    if (value === undefined || value === '') {
      throw new LatticeError('INVALID_ARGUMENT', `credential route '${route}' takes its key from $${name}, which is not set; export it, or store it with \`lattice secrets set NAME\` and use key_source = "secret:NAME"`);
    }
    return value;
  }
  try {
    return await run.secret(name);
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', `credential route '${route}' takes its key from the secret ${name}: ${describeError(error)}`);
  }
}

type SandboxEvent = { type: string; decision?: 'allow' | 'deny'; payload: Record<string, unknown> };

/**
 * Proxy decisions are sent to the gate in batches; `flush` returns once everything pushed before it is sent. Each
 * flush chains one drain loop after the previous one, so a flush never waits on itself.
 */
class EventQueue {
  private readonly pending: SandboxEvent[] = [];
  private drained: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  failure: unknown;

  constructor(private readonly admin: GateAdmin) {}

  push(event: SandboxEvent): void {
    this.pending.push(event);
    this.timer ??= setTimeout(() => void this.flush(), 50);
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.drained = this.drained.then(async () => {
      while (this.pending.length > 0) {
        const events = this.pending.splice(0, MAX_SANDBOX_EVENTS);
        try {
          await this.admin('POST', '/api/v1/admin/sandbox-events', { events });
        } catch (error) {
          this.failure ??= error;
        }
      }
    });
    return this.drained;
  }

  /** For the session's last request: what is still unsent once sending settles (at most `max`; more are sent now). */
  async takeRest(max: number): Promise<SandboxEvent[]> {
    if (this.pending.length > max) await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.drained;
    return this.pending.splice(0);
  }
}

export async function runSandbox(run: SandboxRun): Promise<number> {
  const env = run.env ?? process.env;
  const profile = run.profile;
  const allowHosts = [...new Set([...profile.allowHosts, ...run.allowHosts])];
  const routes = run.network ? Object.keys(profile.credentials).sort() : [];
  const keys = new Map<string, string>();
  for (const r of routes) keys.set(r, await resolveKey(run, r, profile.credentials[r]?.key_source ?? ''));
  for (const r of routes) {
    const upstream = new URL(profile.credentials[r]?.upstream ?? '');
    if (upstream.protocol === 'https:' && !allowHosts.includes(upstream.hostname)) {
      throw new LatticeError('PROFILE_INVALID', `credential route '${r}' goes to ${upstream.hostname}, which is not on the allowlist; add it to allow_hosts`);
    }
  }
  const uid = process.getuid?.() ?? 0;
  checkDegraded(run.allowDegraded, uid);
  if (!existsSync(run.helper)) throw new LatticeError('SANDBOX_UNAVAILABLE', `the sandbox helper is missing (${run.helper}); rebuild with \`npm run build\``);
  const { gateSocket, dir: runDir } = runPaths(run.paths);
  // Checked before anything starts: the gate socket is bound into the sandbox, and without it nothing can be recorded.
  if (!existsSync(gateSocket)) throw new LatticeError('GATE_NOT_RUNNING', `no gate is running for ${run.paths.root} (no socket at ${gateSocket}); start one with \`lattice up\` (or \`lattice up --detach\` to keep it in the background)`);

  // The workspace's repositories, nested ones included (sandbox/repos.ts), and what their configuration includes or
  // takes hooks from there (sandbox/git-config.ts); what an agent of an earlier session left in their .git for git
  // on the host to follow refuses the run (sandbox/git-state.ts).
  const writable = writableElsewhere(run, env);
  const found = findRepositories(run.workspace, writable);
  const configured = configuredPaths(run.workspace, found.checkouts, writable, env['HOME']);
  const repos = checkBeforeSession(run.workspace, found.gitdirs);
  const helper = new Helper(run.helper);
  const events = new EventQueue(run.admin);
  const servers: Server[] = [];
  let runtimeDir: string | undefined;
  let held: { release(): void } | undefined;
  let peerId: string | undefined;
  let exited: SandboxEvent | undefined;
  let homeDir: DirHandle | undefined;
  try {
    // The private home, opened by descriptor and never entered by name again (sandbox/agent-home.ts).
    const home = openPrivateHome(run.paths.root, profile.name, profile.homeDirs);
    homeDir = home.dir;
    // The agent's MCP client starts `lattice mcp` inside with the sandbox's own credential: lattice's files are
    // bound read-only for it, and the server's entry is in a file generated into the sandbox's root or, for a client
    // that reads it only from its home, merged into its configuration there once the plan is sent.
    const mcpMounts: string[] = [];
    const mcpCommand = [...selfCommand(), 'mcp', '--credential', INSIDE.credential];
    const mcp = profile.mcpClient === null ? null : { client: profile.mcpClient, wiring: mcpWiring(profile.mcpClient, mcpCommand) };
    if (mcp !== null) {
      const root = selfRoot();
      if (root !== '/') mcpMounts.push(root);
    }
    // Bound at /run/lattice: the gate socket's mount point, the credential (filled in place once enrolled) and the
    // proxies' sockets, which appear in it after the helper has bound the directory.
    ensurePrivateDir(runDir);
    runtimeDir = mkdtempSync(join(runDir, 'sbx_'));
    for (const name of ['proxy.sock', ...routes.map((r) => `route-${r}.sock`)]) checkSocketPath(join(runtimeDir, name));
    closeSync(openSync(join(runtimeDir, 'gate.sock'), 'w', 0o600));
    const credentialFile = join(runtimeDir, 'credential.json');
    closeSync(openSync(credentialFile, 'w', 0o600));

    const argv = run.argv.length > 0 ? run.argv : profile.command;
    let plan: SandboxPlan;
    try {
      plan = computePlan({
        profile, workspace: run.workspace, home: home.path, homeInside: env['HOME'] ?? homedir(), runtimeDir, gateSocket, hostDirs: hostDirs(run.paths.root, env),
        files: mcp?.wiring.files ?? [], env: mcp?.wiring.env ?? {},
        roMounts: [...profile.roMounts, ...run.roMounts, ...mcpMounts], rwMounts: [...profile.rwMounts, ...run.rwMounts], passEnv: run.passEnv,
        network: run.network, routes, allowDegraded: run.allowDegraded, argv, hostEnv: env,
        uid, gid: process.getgid?.() ?? 0, repos: found, configured,
      });
    } catch (error) {
      if (error instanceof LatticeError) throw error;
      throw new LatticeError('SANDBOX_UNAVAILABLE', describeError(error));
    }
    helper.sendPlan(plan);
    // Beside the helper's work (the temp file's random name loads node:crypto); a configuration that cannot be read
    // or parsed stops the run here, before anything is enrolled or recorded.
    if (mcp !== null) writeHomeMcpConfig(home, mcp.client, mcp.wiring, mcpCommand);
    homeDir.close();
    homeDir = undefined;

    // From here on the helper builds the sandbox while this process loads and does the rest: node:crypto for the
    // identity's key, node:http for the proxies and the gate, the enrollment's round trip.
    const sandboxId = randomId('sbx');
    const summary = {
      sandboxId, profile: profile.name, workspace: run.workspace, command: argv, allowHosts, routes,
      network: run.network, proxyPort: run.network ? PROXY_PORT : null,
      routePorts: Object.fromEntries(routes.map((r, i) => [r, ROUTE_PORT_BASE + i])), skipped: plan.skipped,
    };
    const onDecision = (d: ProxyDecision) => events.push({ type: 'sandbox.proxy', decision: d.decision, payload: { sandboxId, ...d } });
    const dir = runtimeDir;
    const dpop = generateEd25519Jwks();
    const start = async (state: Record<string, unknown>): Promise<string> => {
      // The request stays open until the session closes: if this process dies instead, the gate revokes the identity.
      const enrolled = run.openHeld<EnrollmentReply>('/api/v1/admin/sandboxes', {
        identity: { agentName: `sandbox-${profile.name}`.slice(0, 64), agentType: profile.name, workspaceId: 'sandbox', ttl: profile.ttl, policyPreset: profile.preset, publicJwk: dpop.publicJwk },
        started: { ...summary, ...state },
        runtime: basename(dir),
      }).then((opened) => {
        held = opened;
        peerId = opened.value.peerId;
        writeFileSync(credentialFile, `${JSON.stringify(credentialFor(opened.value, dpop, INSIDE.gateSocket), null, 2)}\n`, { mode: 0o600 });
        return opened.value.peerId;
      });
      // Both settle before either outcome counts, so a proxy that fails cannot leave an enrollment in flight.
      const [identity, proxies] = await Promise.allSettled([enrolled, run.network ? startProxies(dir, allowHosts, routes, keys, profile, onDecision, servers) : undefined]);
      if (identity.status === 'rejected') throw new LatticeError('SANDBOX_FAILED', `the gate could not record the sandbox start, so the command was not run: ${describeError(identity.reason)}`);
      if (proxies.status === 'rejected') throw new LatticeError('SANDBOX_FAILED', `the proxies could not start, so the command was not run: ${describeError(proxies.reason)}`);
      return identity.value;
    };
    const result = await execute(run, helper, summary, events, start);
    exited = { type: 'sandbox.exited', payload: { sandboxId, exitCode: result.exitCode, durationMs: result.durationMs, ...(result.error === undefined ? {} : { error: result.error }) } };
    if (result.error !== undefined) throw new LatticeError('SANDBOX_FAILED', result.error);
    return result.exitCode;
  } finally {
    homeDir?.close();
    await helper.abandon();
    // The agent is gone (its processes die with the helper): what it left in .git for git on the host is undone now.
    cleanRepositories(run, repos);
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    // The runtime directory (sockets, credential file) goes while the gate records the end.
    await Promise.all([close(run, events, peerId, exited), runtimeDir === undefined ? undefined : rm(runtimeDir, { recursive: true, force: true })]);
    held?.release(); // after the close: the gate sees the session closed, not abandoned
  }
}

/** What the agent may write besides the workspace: its private home and the read-write mounts (real paths). */
function writableElsewhere(run: SandboxRun, env: NodeJS.ProcessEnv): string[] {
  const expand = (p: string) => resolve(p.startsWith('~/') ? join(env['HOME'] ?? '/', p.slice(2)) : p);
  const mounts = [...run.profile.rwMounts, ...run.rwMounts].map(expand).filter((p) => existsSync(p));
  return [join(run.paths.root, 'homes', run.profile.name), ...mounts.map((p) => realpathSync(p))];
}

/** After the session: what sandbox/git-state.ts did, or could not do, is reported; neither hides the run's outcome. */
function cleanRepositories(run: SandboxRun, repos: GitSnapshot): void {
  try {
    for (const line of cleanAfterSession(run.workspace, repos)) run.log(`warning: ${line}`);
  } catch (error) {
    run.log(`warning: could not check the workspace's repository for links the agent left: ${describeError(error)}; look for symbolic links in the .git directories of ${run.workspace} before running git there`);
  }
}

/** The CONNECT proxy and one credential proxy per route, listening on their sockets in `dir` (node:http loads here). */
async function startProxies(dir: string, allowHosts: readonly string[], routes: readonly string[], keys: ReadonlyMap<string, string>, profile: SandboxProfile, onDecision: (d: ProxyDecision) => void, servers: Server[]): Promise<void> {
  const { connectProxy, credentialProxy } = await import('./proxy.ts');
  const routedHosts = routes.map((r) => new URL(profile.credentials[r]?.upstream ?? '').hostname);
  servers.push(await listen(connectProxy({ allowHosts, routedHosts, onDecision }), join(dir, 'proxy.sock')));
  for (const r of routes) {
    const route = profile.credentials[r];
    if (route === undefined) continue;
    const value = route.format.replaceAll('{key}', keys.get(r) ?? '');
    servers.push(await listen(await credentialProxy({ route: r, upstream: new URL(route.upstream), header: route.header, value, key: keys.get(r) ?? '', allowUpgrade: route.allow_upgrade === true, onDecision }), join(dir, `route-${r}.sock`)));
  }
}

/** Revokes the sandbox identity and records the last events in one request (or just sends the events). */
async function close(run: SandboxRun, events: EventQueue, peerId: string | undefined, exited: SandboxEvent | undefined): Promise<void> {
  if (exited !== undefined) events.push(exited);
  if (peerId === undefined) {
    await events.flush();
  } else {
    const rest = await events.takeRest(MAX_SANDBOX_EVENTS);
    try {
      await run.admin('POST', '/api/v1/admin/sandboxes/close', { peerId, events: rest });
    } catch (error) {
      run.log(`warning: could not revoke the sandbox identity ${peerId} or record the session's end: ${describeError(error)}`);
    }
  }
  if (events.failure !== undefined) run.log(`warning: some sandbox events were not recorded: ${describeError(events.failure)}`);
}

/** Refuses a path too long for a unix socket; checked before the helper gets its plan, so a long home fails early. */
function checkSocketPath(path: string): void {
  if (Buffer.byteLength(path) > 107) throw new LatticeError('SANDBOX_UNAVAILABLE', `the socket path ${path} is longer than unix sockets allow (107 bytes); use a shorter LATTICE_HOME`);
}

function listen(server: Server, path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

interface Outcome {
  readonly exitCode: number;
  readonly durationMs: number;
  /** Set when the command could not be started inside (the helper's reason). */
  readonly error?: string;
}

/**
 * Runs the session's command in the helper, which already has its plan. The helper builds the sandbox while
 * `start` enrolls the identity, records the start and starts the proxies; the command runs only after both (the go
 * on fd 5). A helper that fails, a kernel without Landlock (unless --allow-degraded) or a start the gate cannot
 * record stop the run first.
 */
async function execute(run: SandboxRun, helper: Helper, summary: Record<string, unknown>, events: EventQueue, start: (state: Record<string, unknown>) => Promise<string>): Promise<Outcome> {
  const { child, status, exited } = helper;
  const forward = (signal: NodeJS.Signals) => () => void child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGWINCH'];
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const refuse = async (reason: string, code: 'SANDBOX_UNAVAILABLE' | 'SANDBOX_FAILED'): Promise<never> => {
    helper.decide(false);
    events.push({ type: 'sandbox.refused', decision: 'deny', payload: { ...summary, reason } });
    await exited;
    throw new LatticeError(code, reason);
  };
  const helperFailed = () => status.error() ?? 'the sandbox helper stopped before the agent started';
  try {
    const abiLine = await status.line('landlock');
    if (abiLine === undefined) return await refuse(helperFailed(), 'SANDBOX_FAILED');
    const abi = Number(abiLine.slice(9));
    const degraded = abi <= 0;
    if (degraded && !run.allowDegraded) {
      return await refuse('Landlock is unavailable on this kernel (needs Linux 5.13+ with landlock in the LSM list); pass --allow-degraded to run without it', 'SANDBOX_UNAVAILABLE');
    }
    if (degraded) run.log('warning: running WITHOUT Landlock (--allow-degraded); this is recorded in the ledger');
    const started = start({ landlockAbi: abi, degraded }).then(
      (peerId) => ({ peerId }),
      (error: unknown) => ({ error }),
    );
    const ready = await status.line('ready');
    const enrollment = await started;
    if (ready === undefined) {
      const reason = helperFailed();
      return await refuse(reason, /unavailable|Landlock/.test(reason) ? 'SANDBOX_UNAVAILABLE' : 'SANDBOX_FAILED');
    }
    if ('error' in enrollment) return await refuse(describeError(enrollment.error), 'SANDBOX_FAILED');
    helper.decide(true);
    const begun = Date.now();
    writeStatus(run.jsonStatus, { state: 'running', pid: child.pid, landlockAbi: abi, degraded, ...summary, peerId: enrollment.peerId });
    const { code, signal } = await exited;
    const exitCode = code ?? 128 + signalNumber(signal);
    await status.ended;
    const error = status.error();
    writeStatus(run.jsonStatus, { state: 'exited', exitCode, landlockAbi: abi, degraded, ...summary, peerId: enrollment.peerId, ...(error === undefined ? {} : { error }) });
    return { exitCode, durationMs: Date.now() - begun, ...(error === undefined ? {} : { error }) };
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : constants.signals[signal];
}

function writeStatus(file: string | undefined, value: Record<string, unknown>): void {
  if (file === undefined) return;
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, 0o600);
}

/** The helper shipped beside the bundle (dist/lattice-sandbox). */
export function helperPath(bundleDir: string): string {
  return join(bundleDir, 'lattice-sandbox');
}

