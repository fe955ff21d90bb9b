/**
 * One `lattice sandbox` run: check the gate, enroll a sandbox identity, start the proxies, compute the plan, run
 * the helper, and record start, every proxy decision and the exit in the ledger (through the gate's admin socket).
 * The identity is revoked and the runtime directory removed when the agent exits.
 *
 * Fail closed: a missing gate, a credential that cannot be resolved, a helper that reports a setup error, or a
 * start event the gate cannot record all stop the run before (or kill) the agent; nothing runs unconfined.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { constants, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { randomId } from '../core/crypto/index.ts';
import { LatticeError, describeError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs-atomic.ts';
import { ensurePrivateDir, type HomePaths } from '../core/home.ts';
import { runPaths } from '../core/gate/gate.ts';
import { INSIDE, PROXY_PORT, ROUTE_PORT_BASE, computePlan, serializePlan, type SandboxPlan } from './plan.ts';
import type { SandboxProfile } from './profile.ts';
import { connectProxy, credentialProxy, type ProxyDecision } from './proxy.ts';
import type { Credential } from '../sdk/credential.ts';

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
  /** Reads a secret for `key_source = "secret:NAME"`. */
  readonly secret: (name: string) => string;
  readonly env?: NodeJS.ProcessEnv;
  /** Where progress and warnings go (stderr). */
  readonly log: (line: string) => void;
}

interface Enrolled {
  peerId: string;
  leaseId: string;
  enrollmentToken: string;
  expiresAt: string;
}

/** The workspace: a real, existing directory that is not / , the user's home or a system directory. */
export function checkWorkspace(dir: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', `the workspace ${dir} does not exist: ${describeError(error)}`);
  }
  const forbidden = ['/', homedir(), '/usr', '/etc', '/bin', '/sbin', '/lib', '/var', '/proc', '/sys', '/dev', '/run', '/boot', '/tmp'];
  if (forbidden.includes(real)) throw new LatticeError('INVALID_ARGUMENT', `the workspace may not be ${real}; run lattice sandbox in a project directory or pass --workspace DIR`);
  return real;
}

function resolveKey(run: SandboxRun, route: string, source: string): string {
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
    return run.secret(name);
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', `credential route '${route}' takes its key from the secret ${name}: ${describeError(error)}`);
  }
}

/**
 * Proxy decisions are sent to the gate in batches; `flush` returns once everything pushed before it is sent. Each
 * flush chains one drain loop after the previous one, so a flush never waits on itself.
 */
class EventQueue {
  private readonly pending: { type: string; decision?: 'allow' | 'deny'; payload: Record<string, unknown> }[] = [];
  private drained: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  failure: unknown;

  constructor(private readonly admin: GateAdmin) {}

  push(event: { type: string; decision?: 'allow' | 'deny'; payload: Record<string, unknown> }): void {
    this.pending.push(event);
    this.timer ??= setTimeout(() => void this.flush(), 50);
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.drained = this.drained.then(async () => {
      while (this.pending.length > 0) {
        const events = this.pending.splice(0, 256);
        try {
          await this.admin('POST', '/api/v1/admin/sandbox-events', { events });
        } catch (error) {
          this.failure ??= error;
        }
      }
    });
    return this.drained;
  }
}

export async function runSandbox(run: SandboxRun): Promise<number> {
  const env = run.env ?? process.env;
  const profile = run.profile;
  const allowHosts = [...new Set([...profile.allowHosts, ...run.allowHosts])];
  const routes = run.network ? Object.keys(profile.credentials).sort() : [];
  const keys = new Map(routes.map((r) => [r, resolveKey(run, r, profile.credentials[r]?.key_source ?? '')]));
  for (const r of routes) {
    const upstream = new URL(profile.credentials[r]?.upstream ?? '');
    if (upstream.protocol === 'https:' && !allowHosts.includes(upstream.hostname)) {
      throw new LatticeError('PROFILE_INVALID', `credential route '${r}' goes to ${upstream.hostname}, which is not on the allowlist; add it to allow_hosts`);
    }
  }
  if (!existsSync(run.helper)) throw new LatticeError('SANDBOX_UNAVAILABLE', `the sandbox helper is missing (${run.helper}); rebuild with \`npm run build\``);

  const sandboxId = randomId('sbx');
  const runtimeDir = join(runPaths(run.paths).dir, sandboxId);
  const home = join(run.paths.root, 'homes', profile.name);
  ensurePrivateDir(join(run.paths.root, 'homes'));
  ensurePrivateDir(home);
  for (const d of profile.homeDirs) mkdirSync(join(home, d), { recursive: true, mode: 0o700 });
  ensurePrivateDir(runtimeDir);
  closeSync(openSync(join(runtimeDir, 'gate.sock'), 'w', 0o600)); // the mount point of the gate socket inside

  const events = new EventQueue(run.admin);
  const servers: Server[] = [];
  let peerId: string | undefined;
  try {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const enrolled = await run.admin<Enrolled>('POST', '/api/v1/agent-enroll', {
      agentName: `sandbox-${profile.name}`.slice(0, 64),
      agentType: profile.name,
      workspaceId: 'sandbox',
      ttl: profile.ttl,
      policyPreset: profile.preset,
      publicJwk,
    });
    peerId = enrolled.peerId;
    const credential: Credential = {
      version: 1, peerId: enrolled.peerId, leaseId: enrolled.leaseId, token: enrolled.enrollmentToken, alg: 'EdDSA',
      privateJwk: (await exportJWK(privateKey)) as Record<string, string>, publicJwk: publicJwk as Record<string, string>, socketPath: INSIDE.gateSocket, baseUrl: 'http://localhost', expiresAt: enrolled.expiresAt,
    };
    writeFileAtomic(join(runtimeDir, 'credential.json'), `${JSON.stringify(credential, null, 2)}\n`, 0o600);

    const onDecision = (d: ProxyDecision) => events.push({ type: 'sandbox.proxy', decision: d.decision, payload: { sandboxId, ...d } });
    if (run.network) {
      const routedHosts = routes.map((r) => new URL(profile.credentials[r]?.upstream ?? '').hostname);
      servers.push(await listen(connectProxy({ allowHosts, routedHosts, onDecision }), join(runtimeDir, 'proxy.sock')));
      for (const r of routes) {
        const route = profile.credentials[r];
        if (route === undefined) continue;
        const value = route.format.replaceAll('{key}', keys.get(r) ?? '');
        servers.push(await listen(credentialProxy({ route: r, upstream: new URL(route.upstream), header: route.header, value, onDecision }), join(runtimeDir, `route-${r}.sock`)));
      }
    }

    const argv = run.argv.length > 0 ? run.argv : profile.command;
    let plan: SandboxPlan;
    try {
      plan = computePlan({
        profile, workspace: run.workspace, home, homeInside: env['HOME'] ?? homedir(), runtimeDir, gateSocket: runPaths(run.paths).gateSocket,
        roMounts: [...profile.roMounts, ...run.roMounts], rwMounts: [...profile.rwMounts, ...run.rwMounts], passEnv: run.passEnv,
        network: run.network, routes, allowDegraded: run.allowDegraded, argv, hostEnv: env,
        uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0,
      });
    } catch (error) {
      throw new LatticeError('SANDBOX_UNAVAILABLE', describeError(error));
    }
    const summary = {
      sandboxId, profile: profile.name, workspace: run.workspace, command: argv, peerId, allowHosts, routes,
      network: run.network, proxyPort: run.network ? PROXY_PORT : null,
      routePorts: Object.fromEntries(routes.map((r, i) => [r, ROUTE_PORT_BASE + i])), skipped: plan.skipped,
    };
    return await execute(run, plan, summary, events);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (peerId !== undefined) {
      await run.admin('POST', '/api/v1/revoke', { id: peerId }).catch((error: unknown) => run.log(`warning: could not revoke the sandbox identity ${peerId}: ${describeError(error)}`));
    }
    await events.flush();
    rmSync(runtimeDir, { recursive: true, force: true });
    if (events.failure !== undefined) run.log(`warning: some sandbox events were not recorded: ${describeError(events.failure)}`);
  }
}

function listen(server: Server, path: string): Promise<Server> {
  if (Buffer.byteLength(path) > 107) throw new LatticeError('SANDBOX_UNAVAILABLE', `the socket path ${path} is longer than unix sockets allow (107 bytes); use a shorter LATTICE_HOME`);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

async function execute(run: SandboxRun, plan: SandboxPlan, summary: Record<string, unknown>, events: EventQueue): Promise<number> {
  const started = Date.now();
  const child = spawn(run.helper, [], { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'], env: {} });
  const forward = (signal: NodeJS.Signals) => () => void child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGWINCH'];
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const planPipe = child.stdio[3] as NodeJS.WritableStream;
  planPipe.on('error', () => undefined); // the helper may exit before reading it all; its exit status says why
  planPipe.end(serializePlan(plan));
  let status = '';
  const statusPipe = child.stdio[4] as NodeJS.ReadableStream;
  statusPipe.on('data', (d: Buffer) => void (status += d.toString('utf8')));
  const statusEnded = new Promise<void>((resolve) => statusPipe.on('end', resolve));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    await Promise.race([statusEnded, exited]);
    const lines = status.split('\n');
    const error = lines.find((l) => l.startsWith('error '));
    const abi = Number(lines.find((l) => l.startsWith('landlock '))?.slice(9) ?? '-1');
    if (error !== undefined || !lines.includes('ready')) {
      const reason = error?.slice(6) ?? 'the sandbox helper stopped before the agent started';
      events.push({ type: 'sandbox.refused', decision: 'deny', payload: { ...summary, reason } });
      await exited;
      throw new LatticeError(/unavailable|Landlock/.test(reason) ? 'SANDBOX_UNAVAILABLE' : 'SANDBOX_FAILED', reason);
    }
    const degraded = abi <= 0;
    if (degraded) run.log('warning: running WITHOUT Landlock (--allow-degraded); this is recorded in the ledger');
    try {
      await run.admin('POST', '/api/v1/admin/sandbox-events', { events: [{ type: 'sandbox.started', decision: 'allow', payload: { ...summary, landlockAbi: abi, degraded } }] });
    } catch (error) {
      child.kill('SIGKILL'); // no evidence of the start, no agent
      throw new LatticeError('SANDBOX_FAILED', `the gate could not record the sandbox start, so the agent was stopped: ${describeError(error)}`);
    }
    writeStatus(run.jsonStatus, { state: 'running', pid: child.pid, landlockAbi: abi, degraded, ...summary });
    const { code, signal } = await exited;
    const exitCode = code ?? 128 + signalNumber(signal);
    events.push({ type: 'sandbox.exited', payload: { sandboxId: summary['sandboxId'], exitCode, durationMs: Date.now() - started } });
    writeStatus(run.jsonStatus, { state: 'exited', exitCode, landlockAbi: abi, degraded, ...summary });
    return exitCode;
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

