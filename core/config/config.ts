/**
 * The gate's configuration: `$LATTICE_HOME/lattice.toml` (or `--config FILE`), TOML read with smol-toml.
 *
 * Every setting has a default, so no file at all is a valid configuration. A file is validated once, when it is
 * loaded: an unknown key, a wrong type or an unparseable duration is an error that names the key (and suggests
 * the key that was probably meant); nothing is ignored or guessed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { LatticeError, describeError } from '../errors.ts';
import type { HomePaths } from '../home.ts';
import { parseDuration } from '../time.ts';
import type { Budget } from '../pipeline/budgets.ts';
import { CONFIG_SCHEMA, type RawConfig } from './schema.ts';
import { resolveWebhooks, type WebhookConfig } from './webhooks.ts';
import { compiledOnUse } from '../server/validate.ts';

export type { WebhookConfig } from './webhooks.ts';

export interface GateConfig {
  readonly gate: {
    /** Base of the URLs DPoP proofs must name (`htu`); never taken from a request's Host header. */
    readonly baseUrl: string;
    /** Optional loopback TCP listener, `HOST:PORT`. */
    readonly listen: string | null;
    readonly requestTimeoutMs: number;
    readonly bodyLimitBytes: number;
  };
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly identity: {
    readonly overlayCidr: string;
    readonly maxTtlMs: number;
    readonly reaperIntervalMs: number;
    readonly dpopWindowSeconds: number;
    /** CIDRs that `sandboxed` peers may reach besides the gate. */
    readonly toolServices: readonly string[];
  };
  readonly wireguard: { readonly endpoint: string; readonly listenPort: number };
  readonly ledger: { readonly checkpointEvery: number; readonly checkpointIntervalMs: number };
  readonly actions: {
    /** Root of fs.read / fs.write; empty means `<home>/workspace`. */
    readonly fsRoot: string;
    /** Hosts the generic http.request action may reach (none: the action is not offered). */
    readonly httpHosts: readonly string[];
  };
  readonly providers: {
    /** Provider worker threads (0 in the file: one per CPU core). */
    readonly workers: number;
    /** A component's memory cap unless its manifest sets one; the V8 heap of each worker. */
    readonly memoryMb: number;
    readonly heapMb: number;
    /** The longest plan or output a provider may return. */
    readonly maxOutputKb: number;
    /** Provider calls that may wait for a worker. */
    readonly queue: number;
    /** Booting a worker and loading a component before a call starts (its own deadline starts after). */
    readonly loadTimeoutMs: number;
  };
  readonly approvals: { readonly timeoutMs: number };
  /** A burst of denials for one agent is an anomaly; on_burst says whether the gate also revokes the agent. */
  readonly anomaly: { readonly denials: number; readonly windowMs: number; readonly onBurst: 'record' | 'revoke' };
  /** Limits from the configuration; `lattice budgets set` adds more at run time. */
  readonly budgets: readonly Budget[];
  /** Where announced events are delivered (`[[webhooks]]`). */
  readonly webhooks: readonly WebhookConfig[];
}

export const DEFAULTS = {
  gate: { base_url: 'http://localhost', listen: '', request_timeout: '30s', body_limit: 1024 * 1024 },
  tls: { cert: '', key: '' },
  identity: { overlay_cidr: '10.96.0.0/16', max_ttl: '24h', reaper_interval: '60s', dpop_window: '60s', tool_services: [] as string[] },
  wireguard: { endpoint: '127.0.0.1:51820', listen_port: 51820 },
  ledger: { checkpoint_every: 1000, checkpoint_interval: '30s' },
  actions: { fs_root: '', http_hosts: [] as string[] },
  providers: { workers: 0, memory_mb: 64, heap_mb: 128, max_output_kb: 4096, queue: 1024, load_timeout: '15s' },
  approvals: { timeout: '15m' },
  anomaly: { denials: 10, window: '60s', on_burst: 'record' },
} as const;

const validate = compiledOnUse<RawConfig>(CONFIG_SCHEMA, { allErrors: true });

export function configPath(paths: HomePaths): string {
  return `${paths.root}/lattice.toml`;
}

/** Loads and validates the configuration; with no explicit file and none in the home, the defaults. */
export function loadConfig(paths: HomePaths, explicit?: string): { config: GateConfig; file: string | null } {
  const file = explicit ?? configPath(paths);
  if (explicit === undefined && !existsSync(file)) return { config: resolve({}, 'defaults'), file: null };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new LatticeError('CONFIG_UNREADABLE', `cannot read the configuration ${file}: ${describeError(error)}`, { cause: error });
  }
  return { config: parseConfig(text, file), file };
}

export function parseConfig(text: string, file: string): GateConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    throw new LatticeError('CONFIG_INVALID', `${file} is not valid TOML: ${describeError(error)}`, { cause: error });
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => {
      // budgets[0].window: array members by index, as the messages of resolve() name them
      const at = e.instancePath.replace(/^\//, '').replaceAll(/\/(\d+)(?=\/|$)/g, '[$1]').replaceAll('/', '.');
      if (e.keyword === 'additionalProperties') {
        const key = [at, String(e.params['additionalProperty'])].filter((p) => p !== '').join('.');
        const hint = suggest(key);
        return `unknown key ${key}${hint === undefined ? '' : ` (did you mean ${hint}?)`}`;
      }
      return `${at === '' ? 'the file' : at} ${e.message ?? 'is invalid'}`;
    });
    throw new LatticeError('CONFIG_INVALID', `${file}: ${problems.join('; ')}`);
  }
  return resolve(raw, file);
}

function resolve(raw: RawConfig, file: string): GateConfig {
  const gate = { ...DEFAULTS.gate, ...raw.gate };
  const tls = { ...DEFAULTS.tls, ...raw.tls };
  const identity = { ...DEFAULTS.identity, ...raw.identity };
  const wireguard = { ...DEFAULTS.wireguard, ...raw.wireguard };
  const ledger = { ...DEFAULTS.ledger, ...raw.ledger };
  const actions = { ...DEFAULTS.actions, ...raw.actions };
  const approvals = { ...DEFAULTS.approvals, ...raw.approvals };
  const anomaly = { ...DEFAULTS.anomaly, ...raw.anomaly };
  const providers = { ...DEFAULTS.providers, ...raw.providers };
  const duration = (value: string, key: string) => {
    try {
      return parseDuration(value, key);
    } catch (error) {
      throw new LatticeError('CONFIG_INVALID', `${file}: ${describeError(error)}`, { cause: error });
    }
  };
  if ((tls.cert === '') !== (tls.key === '')) throw new LatticeError('CONFIG_INVALID', `${file}: tls.cert and tls.key must be set together`);
  return {
    gate: {
      baseUrl: gate.base_url.replace(/\/+$/, ''),
      listen: gate.listen === '' ? null : gate.listen,
      requestTimeoutMs: duration(gate.request_timeout, 'gate.request_timeout'),
      bodyLimitBytes: gate.body_limit,
    },
    tls: tls.cert === '' ? null : { cert: tls.cert, key: tls.key },
    identity: {
      overlayCidr: identity.overlay_cidr,
      maxTtlMs: duration(identity.max_ttl, 'identity.max_ttl'),
      reaperIntervalMs: duration(identity.reaper_interval, 'identity.reaper_interval'),
      dpopWindowSeconds: Math.max(1, Math.round(duration(identity.dpop_window, 'identity.dpop_window') / 1000)),
      toolServices: identity.tool_services,
    },
    wireguard: { endpoint: wireguard.endpoint, listenPort: wireguard.listen_port },
    ledger: { checkpointEvery: ledger.checkpoint_every, checkpointIntervalMs: duration(ledger.checkpoint_interval, 'ledger.checkpoint_interval') },
    actions: { fsRoot: actions.fs_root, httpHosts: actions.http_hosts },
    providers: {
      workers: providers.workers === 0 ? availableParallelism() : providers.workers,
      memoryMb: providers.memory_mb,
      heapMb: providers.heap_mb,
      maxOutputKb: providers.max_output_kb,
      queue: providers.queue,
      loadTimeoutMs: duration(providers.load_timeout, 'providers.load_timeout'),
    },
    approvals: { timeoutMs: duration(approvals.timeout, 'approvals.timeout') },
    anomaly: { denials: anomaly.denials, windowMs: duration(anomaly.window, 'anomaly.window'), onBurst: anomaly.on_burst },
    budgets: (raw.budgets ?? []).map((b, i) => {
      const subjects = (['agent', 'workspace', 'preset'] as const).filter((k) => b[k] !== undefined);
      if (subjects.length !== 1) throw new LatticeError('CONFIG_INVALID', `${file}: budgets[${i}] needs exactly one of agent, workspace or preset`);
      if (b.calls === undefined && b.cost === undefined) throw new LatticeError('CONFIG_INVALID', `${file}: budgets[${i}] needs calls, cost or both`);
      const scope = subjects[0]!;
      return { scope, subject: b[scope] ?? '', calls: b.calls ?? null, cost: b.cost ?? null, windowMs: duration(b.window, `budgets[${i}].window`), source: 'config' as const };
    }),
    webhooks: resolveWebhooks(raw.webhooks ?? [], file, duration),
  };
}

/** Every key the schema knows: `gate`, `gate.listen`, and members of arrays of tables as `webhooks[].url`. */
const KNOWN_KEYS = Object.entries(CONFIG_SCHEMA.properties as Record<string, { properties?: object; items?: { properties?: object } }>).flatMap(([section, members]) => {
  if (members.properties !== undefined) return [section, ...Object.keys(members.properties).map((k) => `${section}.${k}`)];
  return [section, ...Object.keys(members.items?.properties ?? {}).map((k) => `${section}[].${k}`)];
});

/** The known key closest to an unknown one, for "did you mean" hints (`webhooks[2].sercet` → `webhooks[2].secret`). */
function suggest(unknown: string): string | undefined {
  const index = /\[(\d+)\]/.exec(unknown)?.[1];
  const normalized = unknown.replace(/\[\d+\]/, '[]');
  let best: { key: string; distance: number } | undefined;
  for (const key of KNOWN_KEYS) {
    const distance = editDistance(normalized, key);
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { key, distance };
  }
  return index === undefined ? best?.key : best?.key.replace('[]', `[${index}]`);
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
