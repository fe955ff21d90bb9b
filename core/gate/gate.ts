/**
 * The gate daemon: opens the ledger, listens on `run/gate.sock` (agents) and `run/admin.sock` (the operator), and
 * optionally on a loopback TCP address, and records its own start and stop. The admin socket is the root of trust
 * on the host: it lives in a 0700 directory, mode 0600, so only the gate's own user reaches it.
 *
 * A TCP listener on anything but loopback is refused unless TLS is configured; a second gate on the same home is
 * refused while the first answers on its sockets.
 */
import { readFileSync, rmSync } from 'node:fs';
import type { GateConfig } from '../config/config.ts';
import { LatticeError, describeError } from '../errors.ts';
import { writeFileAtomic } from '../fs-atomic.ts';
import { ensureHome, ensurePrivateDir, type HomePaths, runPaths, type RunPaths } from '../home.ts';
import { Ledger } from '../ledger/ledger.ts';
import { GateServer, type Route } from '../server/http.ts';
import { actionRoutes } from '../actions/routes.ts';
import { ActionRegistry, registryOptions } from '../actions/registry.ts';
import { identity, type Identity } from '../identity/routes.ts';
import { Approvals } from '../pipeline/approvals.ts';
import { Budgets } from '../pipeline/budgets.ts';
import type { EffectHost } from '../pipeline/effects.ts';
import { usability } from '../pipeline/decide.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { ProviderHost, ProviderHostFactory } from '../pipeline/provider.ts';
import { pipelineRoutes } from '../pipeline/routes.ts';
import { PolicyStore } from '../policy/store.ts';
import { EventHub } from '../events/stream.ts';
import { watchDenials } from '../events/watch.ts';
import { reportRoutes } from '../pipeline/reports.ts';
import { Deliverer } from '../webhooks/deliverer.ts';
import { withSigningKeys } from '../webhooks/keys.ts';
import { webhookRoutes } from '../webhooks/routes.ts';
import { syncSubscriptions } from '../webhooks/subscriptions.ts';
import { adminRoutes } from './admin-routes.ts';
import { auditRoutes } from './audit-routes.ts';
import { GateVerifier } from './verifier.ts';

export interface GateOptions {
  readonly paths: HomePaths;
  readonly config: GateConfig;
  readonly configFile: string | null;
  readonly version: string;
  /** Overrides `gate.listen`. */
  readonly listen?: string;
  /** Routes beyond the built-in ones. */
  readonly routes?: (gate: RunningGate) => readonly Route[];
  /** Providers plan and finish actions; the host performs their effects (both live outside core). */
  readonly providers: ProviderHostFactory;
  readonly effects: EffectHost;
  /** The ledger verification worker (built beside the CLI); without it the gate verifies on its main thread. */
  readonly verifyWorkerUrl?: URL;
}

export interface RunningGate {
  readonly pid: number;
  readonly version: string;
  readonly startedAt: string;
  readonly paths: HomePaths;
  readonly run: RunPaths;
  readonly config: GateConfig;
  readonly ledger: Ledger;
  readonly identity: Identity;
  readonly approvals: Approvals;
  /** Delivers announced events to the configured webhooks. */
  readonly webhooks: Deliverer;
  readonly tcp: { readonly host: string; readonly port: number; readonly tls: boolean } | null;
  /** Resolves when the gate has stopped (by `stop()`, a signal handler, or the admin shutdown route). */
  readonly stopped: Promise<void>;
  /** True from the moment `stop()` is called. */
  readonly stopping: boolean;
  stop(reason: string): Promise<void>;
}

export async function startGate(options: GateOptions): Promise<RunningGate> {
  const { paths, config } = options;
  ensureHome(paths);
  const run = runPaths(paths);
  ensurePrivateDir(run.dir);
  const listen = parseListen(options.listen ?? config.gate.listen, config);
  const ledger = Ledger.open(paths, { checkpointEvery: config.ledger.checkpointEvery, checkpointIntervalMs: config.ledger.checkpointIntervalMs });
  let id: Identity;
  let actions: ActionRegistry;
  let policies: PolicyStore;
  let approvals: Approvals | undefined;
  let pipeline: Pipeline;
  let budgets: Budgets;
  let providers: ProviderHost | undefined;
  let webhooks: Deliverer;
  try {
    id = identity(ledger, config, paths, { peersRemoved: () => approvals?.cancelOrphaned() ?? Promise.resolve() });
    // Every webhook's key is resolved, or the gate does not start; then the outbox trigger's table follows the config.
    const signed = withSigningKeys(config.webhooks, { env: process.env, secret: (name) => id.secrets().get(name) });
    await syncSubscriptions(ledger, config.webhooks);
    webhooks = new Deliverer({ ledger, webhooks: signed, userAgent: `lattice/${options.version}` });
    const registryConfig = registryOptions(config, paths);
    if (config.actions.fsRoot === '') ensurePrivateDir(registryConfig.fsRoot); // the default root, <home>/workspace
    actions = ActionRegistry.load(paths, registryConfig);
    policies = await PolicyStore.open(ledger, paths);
    budgets = new Budgets(ledger.database, config.budgets);
    providers = options.providers({ paths, keys: ledger.keys, config });
    const secrets = id.secrets;
    pipeline = new Pipeline({
      registry: actions,
      providers: providers.resolve,
      effects: options.effects,
      policies,
      budgets,
      ledger,
      secret: (name) => secrets().get(name),
      approvalTimeoutMs: config.approvals.timeoutMs,
    });
    approvals = new Approvals(pipeline.deps, id.peers);
  } catch (error) {
    await providers?.close();
    ledger.close();
    throw error;
  }
  const providerHost = providers;
  const held = approvals;
  const deliverer = webhooks;
  // Expired peers (and those of an old revocation epoch) are removed on a timer, one event each; approvals past
  // their time expire and old budget windows are dropped on the same beat.
  const reaper = setInterval(() => {
    const now = Date.now();
    Promise.all([id.reap(), held.expireDue(now)])
      .then(() => budgets.purge(now))
      .catch((error: unknown) =>
      process.stderr.write(`lattice gate: reaper: ${describeError(error)}\n`),
    );
  }, config.identity.reaperIntervalMs);
  reaper.unref();

  const verifier = new GateVerifier(ledger, ledger.keys, options.verifyWorkerUrl ?? null);
  const hub = new EventHub(ledger, id.auth);
  const stopWatching = watchDenials(ledger, { ...config.anomaly, revoke: (peerId) => id.revoke(peerId), lineage: (peerId) => id.peers.lineage(peerId) });

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  let server: GateServer | undefined;
  const gate: RunningGate = {
    pid: process.pid,
    version: options.version,
    startedAt: new Date().toISOString(),
    paths,
    run,
    config,
    ledger,
    identity: id,
    approvals: held,
    webhooks: deliverer,
    tcp: null,
    stopped,
    get stopping() {
      return stopping !== undefined;
    },
    stop(reason) {
      stopping ??= (async () => {
        clearInterval(reaper);
        stopWatching();
        hub.close();
        try {
          await server?.flushRefusals(); // the refusals counted in this window are recorded before the stop
          await ledger.append({ type: 'gate.stopped', payload: { pid: process.pid, reason } });
        } finally {
          await server?.close();
          await deliverer.stop(); // before the ledger closes: outcomes of finished attempts are still recorded
          await providerHost.close();
          ledger.close(); // final checkpoint
          rmSync(run.pidFile, { force: true });
          resolveStopped();
        }
      })();
      return stopping;
    },
  };

  try {
    await actions.recordChanges(ledger); // digests of new or changed manifests, before the gate serves
    // Every provider is loaded (read, hashed against its pin, transpiled or taken from the cache) before the gate
    // serves. One that cannot be is recorded and its action fails until it can; the others are served.
    for (const [action, message] of await providerHost.preload(actions.list().map((a) => a.manifest))) {
      process.stderr.write(`lattice gate: the provider of ${action} is unavailable: ${message}\n`);
      await ledger.append({ type: 'provider.unavailable', principal: 'gate', action, decision: 'error', payload: { message: message.slice(0, 512) } });
    }
    await held.recover(); // requests a previous run left mid-flight are recorded as interrupted, never re-run
    server = new GateServer({
      routes: [
        ...adminRoutes(gate),
        ...id.routes,
        ...actionRoutes(actions, ledger, paths, id.auth, (peer, manifest) => usability(policies, peer, manifest)),
        ...pipelineRoutes({ pipeline, approvals: held, budgets, policies, registry: actions, ledger, auth: id.auth }),
        ...reportRoutes(ledger, id.auth),
        ...auditRoutes(id.auth, { ledger, policies, registry: actions, verifier }),
        hub.route(),
        ...webhookRoutes(ledger, deliverer),
        ...(options.routes?.(gate) ?? []),
      ],
      ledger,
      baseUrl: config.gate.baseUrl,
      bodyLimitBytes: config.gate.bodyLimitBytes,
      requestTimeoutMs: config.gate.requestTimeoutMs,
    });
    await server.listenUnix('admin', run.adminSocket);
    await server.listenUnix('gate', run.gateSocket);
    if (listen !== null) {
      const tls = config.tls === null ? undefined : { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
      const { port } = await server.listenTcp(listen.host, listen.port, tls);
      (gate as { tcp: RunningGate['tcp'] }).tcp = { host: listen.host, port, tls: tls !== undefined };
    }
    writeFileAtomic(run.pidFile, `${process.pid}\n`, 0o600);
    await ledger.append({
      type: 'gate.started',
      payload: { pid: process.pid, version: options.version, config: options.configFile, listen: gate.tcp === null ? null : `${gate.tcp.host}:${gate.tcp.port}` },
    });
    deliverer.start(); // messages a previous run left, then each commit's
  } catch (error) {
    clearInterval(reaper);
    stopWatching();
    hub.close();
    await server?.close();
    await providerHost.close();
    ledger.close();
    if (error instanceof LatticeError) throw error;
    throw new LatticeError('GATE_START_FAILED', `the gate could not start: ${describeError(error)}`, { cause: error });
  }
  return gate;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** `HOST:PORT` or `[IPv6]:PORT`; anything but loopback needs TLS. */
function parseListen(value: string | null, config: GateConfig): { host: string; port: number } | null {
  if (value === null || value === '') return null;
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LatticeError('INVALID_ARGUMENT', `--listen ${JSON.stringify(value)} is not HOST:PORT (e.g. 127.0.0.1:7443)`);
  }
  if (!LOOPBACK.test(host) && config.tls === null) {
    throw new LatticeError('INVALID_ARGUMENT', `refusing to listen on ${host} without TLS: use a loopback address, or set [tls] cert and key in lattice.toml`);
  }
  return { host, port };
}
