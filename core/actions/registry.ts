/**
 * The actions the gate knows: the built-ins plus `$LATTICE_HOME/actions/*.toml`. A manifest that does not
 * validate stops the load with the file named (the gate does not start with a set it cannot vouch for); a user
 * manifest may not reuse a built-in id. Each manifest's digest is recorded in the ledger (`action.registered`)
 * the first time it is seen and whenever it changes.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GateConfig } from '../config/config.ts';
import { LatticeError } from '../errors.ts';
import { writeFileAtomic } from '../fs-atomic.ts';
import type { HomePaths } from '../home.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { BUILTIN_MANIFESTS } from './builtin.ts';
import { parseManifest, type ActionManifest } from './manifest.ts';

export interface RegistryOptions {
  /** The root fs.read and fs.write work inside. */
  readonly fsRoot: string;
  /** Hosts the generic http.request action may reach; none means the action is not offered. */
  readonly httpHosts: readonly string[];
}

/** The registry settings a configuration implies (an empty fs root means `<home>/workspace`). */
export function registryOptions(config: GateConfig, paths: HomePaths): RegistryOptions {
  return { fsRoot: config.actions.fsRoot === '' ? join(paths.root, 'workspace') : config.actions.fsRoot, httpHosts: config.actions.httpHosts };
}

export class ActionRegistry {
  private readonly actions = new Map<string, { manifest: ActionManifest; source: string }>();

  private constructor(private readonly dir: string) {}

  static load(paths: HomePaths, options: RegistryOptions): ActionRegistry {
    const registry = new ActionRegistry(join(paths.root, 'actions'));
    for (const [id, template] of Object.entries(BUILTIN_MANIFESTS)) {
      if (id === 'http.request' && options.httpHosts.length === 0) continue;
      const hosts = options.httpHosts.map((h) => `[[sinks.http]]\nhost = ${JSON.stringify(h)}\nmethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]`).join('\n');
      const text = template.replace('${fs_root}', options.fsRoot.replaceAll('\\', '\\\\').replaceAll('"', '\\"')).replace('${http_hosts}', hosts);
      registry.actions.set(id, { manifest: parseManifest(text, `built-in ${id}`), source: 'builtin' });
    }
    if (existsSync(registry.dir)) {
      for (const file of readdirSync(registry.dir).filter((f) => f.endsWith('.toml')).sort()) {
        const path = join(registry.dir, file);
        registry.register(parseManifest(readFileSync(path, 'utf8'), path), path);
      }
    }
    return registry;
  }

  get(id: string): ActionManifest {
    const entry = this.actions.get(id);
    if (entry === undefined) throw new LatticeError('ACTION_NOT_FOUND', `no action ${JSON.stringify(id.slice(0, 128))}; \`lattice actions\` lists them`);
    return entry.manifest;
  }

  list(): { manifest: ActionManifest; source: string }[] {
    return [...this.actions.values()].sort((a, b) => a.manifest.id.localeCompare(b.manifest.id));
  }

  /**
   * Validates a manifest, installs it as `<home>/actions/<id>.toml` (with its publisher's signature beside it as
   * `<id>.toml.sig`, when it has one) and registers it, replacing an older one.
   */
  add(text: string, source: string, signature: string | null = null): ActionManifest {
    const manifest = parseManifest(text, source);
    const existing = this.actions.get(manifest.id);
    if (existing?.source === 'builtin') throw new LatticeError('ACTION_CONFLICT', `${manifest.id} is a built-in action; choose another id`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${manifest.id}.toml`);
    writeFileAtomic(path, text, 0o600);
    if (signature !== null) writeFileAtomic(`${path}.sig`, signature, 0o600);
    else rmSync(`${path}.sig`, { force: true }); // the older manifest's signature does not vouch for this one
    this.actions.set(manifest.id, { manifest, source: path });
    return manifest;
  }

  /** Appends `action.registered` for every manifest whose digest the ledger has not recorded yet. */
  async recordChanges(ledger: Ledger): Promise<string[]> {
    const recorded = ledger.database.prepare(`SELECT value FROM gate_state WHERE key = ?`).pluck();
    const changed: string[] = [];
    for (const { manifest, source } of this.list()) {
      const key = `action:${manifest.id}`;
      if (recorded.get(key) === manifest.digest) continue;
      await ledger.append(
        { type: 'action.registered', principal: 'gate', action: manifest.id, payload: { id: manifest.id, version: manifest.version, digest: manifest.digest, risk: manifest.risk, source: source === 'builtin' ? 'builtin' : 'file' } },
        { write: (db) => void db.prepare('INSERT INTO gate_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, manifest.digest) },
      );
      changed.push(manifest.id);
    }
    return changed;
  }

  private register(manifest: ActionManifest, source: string): void {
    const existing = this.actions.get(manifest.id);
    if (existing !== undefined) {
      throw new LatticeError('ACTION_CONFLICT', `${source} declares ${manifest.id}, which ${existing.source === 'builtin' ? 'is a built-in action' : `${existing.source} already declares`}`);
    }
    this.actions.set(manifest.id, { manifest, source });
  }
}

/** What the API and the CLI show of a manifest: everything but compiled code; secrets by name, never value. */
export function describeAction(manifest: ActionManifest, source: string) {
  return {
    id: manifest.id,
    version: manifest.version,
    description: manifest.description,
    risk: manifest.risk,
    tags: manifest.tags,
    cost: manifest.cost,
    timeoutMs: manifest.timeoutMs,
    provider: manifest.provider,
    requestSchema: manifest.requestSchema,
    sinks: manifest.sinks,
    secrets: manifest.secrets.map((s) => ({ name: s.name, header: s.header, secret: s.secret })),
    digest: manifest.digest,
    source: source === 'builtin' ? 'builtin' : 'file',
  };
}
