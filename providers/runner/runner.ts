/**
 * Resolves an action's provider to a WebAssembly component run in the worker pool. Built-ins are the components
 * shipped in providers/components, each verified against the release key's signature; any other component is a
 * file in `<home>/providers` pinned by the manifest's sha256. Either way the bytes are read and hashed when they
 * are loaded, and a mismatch is refused (PROVIDER_FAILED, recorded by the server with its reason).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionManifest } from '../../core/actions/manifest.ts';
import type { JsonObject, JsonValue } from '../../core/canonical.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import type { HomePaths } from '../../core/home.ts';
import type { Provider, ProviderHost, ProviderResolver, ProviderResult } from '../../core/pipeline/provider.ts';
import type { EffectResult, Effect } from '../../core/pipeline/effects.ts';
import { checkSignatureText, type TrustedKey } from '../../core/trust/signature.ts';
import { BUILTIN_COMPONENTS } from '../builtin/components.ts';
import { parsePlan } from './plan.ts';
import { ProviderPool } from './pool.ts';
import type { CallOutcome, WorkerComponent } from './protocol.ts';
import { ComponentCache, type CacheKeys } from './transpile.ts';
import { WASM_PAGE, limitMemory } from './wasm-memory.ts';

export interface RunnerOptions {
  readonly paths: HomePaths;
  /** Signs and checks the transpile cache's index; null: no cache. */
  readonly keys: CacheKeys | null;
  /** Where the built-in components and their release signatures are. */
  readonly builtinDir: string;
  /** Keys whose signature a built-in component must carry. */
  readonly releaseKeys: readonly TrustedKey[];
  readonly workerUrl: URL;
  readonly workers: number;
  /** V8 heap per worker. */
  readonly heapMb: number;
  /** A component's memory cap unless its manifest sets `memory_mb`. */
  readonly memoryMb: number;
  /** The longest plan or output a provider may return, in UTF-16 code units. */
  readonly maxOutputChars: number;
  readonly maxQueue: number;
  /** How long booting a worker and loading a component may take before its call starts. */
  readonly loadDeadlineMs?: number;
}

interface Loaded extends WorkerComponent {
  readonly sha256: string;
}

/** The directory of user components in a home. */
export function componentsDir(paths: HomePaths): string {
  return join(paths.root, 'providers');
}

export class ProviderRunner implements ProviderHost {
  readonly pool: ProviderPool;
  private readonly cache: ComponentCache;
  private readonly loading = new Map<string, Promise<Loaded>>();
  private readonly providers = new WeakMap<ActionManifest, ComponentProvider>();

  constructor(private readonly options: RunnerOptions) {
    this.cache = new ComponentCache(join(options.paths.root, 'cache', 'providers'), options.keys, options.builtinDir);
    this.pool = new ProviderPool({
      workerUrl: options.workerUrl,
      workers: options.workers,
      heapMb: options.heapMb,
      maxQueue: options.maxQueue,
      ...(options.loadDeadlineMs !== undefined && { loadDeadlineMs: options.loadDeadlineMs }),
      onLog: (key, message) => process.stderr.write(`lattice provider ${key.slice(0, 12)}: ${message}\n`),
    });
  }

  readonly resolve: ProviderResolver = (manifest) => {
    let provider = this.providers.get(manifest);
    if (provider === undefined) {
      provider = new ComponentProvider(this, manifest);
      this.providers.set(manifest, provider);
    }
    return provider;
  };

  /** Loads (and so checks) the provider of every manifest; the failures, by action id. */
  async preload(manifests: readonly ActionManifest[]): Promise<Map<string, string>> {
    const failures = new Map<string, string>();
    await Promise.all(
      manifests.map((m) =>
        this.load(m).then(
          () => undefined,
          (error: unknown) => void failures.set(m.id, describeError(error)),
        ),
      ),
    );
    return failures;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  call(manifest: ActionManifest, fn: 'plan' | 'finish', args: readonly string[], component: WorkerComponent): Promise<CallOutcome> {
    return this.pool.call({
      component,
      fn,
      args,
      finishEmpty: fn === 'plan',
      deadlineMs: manifest.timeoutMs,
      maxChars: this.options.maxOutputChars,
      limitKey: manifest.id,
      limit: manifest.concurrency ?? Number.POSITIVE_INFINITY,
    });
  }

  /** The component for a manifest, read, hashed against its pin, transpiled (or from the cache) and capped. */
  load(manifest: ActionManifest): Promise<Loaded> {
    const pages = Math.floor(((manifest.memoryMb ?? this.options.memoryMb) * 1024 * 1024) / WASM_PAGE);
    const source = 'builtin' in manifest.provider ? `builtin:${manifest.provider.builtin}` : `${manifest.provider.component}:${manifest.provider.sha256}`;
    const key = `${source}:${pages}`;
    let loading = this.loading.get(key);
    if (loading === undefined) {
      loading = this.loadUncached(manifest, pages);
      // A failure is not remembered: the next call reads the file again (the operator may have fixed it).
      loading.catch(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }

  private async loadUncached(manifest: ActionManifest, pages: number): Promise<Loaded> {
    const p = manifest.provider;
    const name = 'builtin' in p ? `built-in ${p.builtin}` : p.component;
    const path = 'builtin' in p ? join(this.options.builtinDir, `${BUILTIN_COMPONENTS[p.builtin]}.wasm`) : join(componentsDir(this.options.paths), p.component);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new LatticeError('COMPONENT_NOT_FOUND', `cannot read the component ${name}: ${describeError(error)}`, { cause: error });
    }
    const pinned = 'builtin' in p ? await this.releasePin(bytes, `${path}.sig`, name) : p.sha256;
    const prepared = await this.cache.prepare(bytes, pinned, name);
    const modules = prepared.modules.map(([n, b]) => [n, limitMemory(b, pages)] as const);
    return { key: `${prepared.sha256}:${pages}`, sha256: prepared.sha256, glue: prepared.glue, modules };
  }

  /** A built-in's pin: the hash its release signature covers, once the signature is checked over these bytes. */
  private async releasePin(bytes: Uint8Array, sigPath: string, name: string): Promise<string> {
    const text = await readFile(sigPath, 'utf8').catch(() => null); // missing or unreadable: said below
    if (text === null) throw new LatticeError('SIGNATURE_INVALID', `${name} has no readable release signature`);
    const check = checkSignatureText(bytes, 'component', text, this.options.releaseKeys);
    if (!check.ok) throw new LatticeError('SIGNATURE_INVALID', `${name}: ${check.message}`);
    return check.sha256;
  }
}

/** The request a provider receives: what it needs of the manifest (never secret values) and the params. */
const actionJson = new WeakMap<ActionManifest, string>();

function requestText(manifest: ActionManifest, params: JsonValue): string {
  let action = actionJson.get(manifest);
  if (action === undefined) {
    action = JSON.stringify({ id: manifest.id, version: manifest.version, secrets: manifest.secrets.map((s) => s.name), template: manifest.template });
    actionJson.set(manifest, action);
  }
  return `{"action":${action},"params":${JSON.stringify(params)}}`;
}

class ComponentProvider implements Provider {
  private loadedSha256: string | null = null;
  /** The finish a plan with no effects already ran, by the params it was planned with (protocol.ts). */
  private readonly finishedEarly = new WeakMap<JsonObject, CallOutcome>();

  constructor(
    private readonly runner: ProviderRunner,
    manifest: ActionManifest,
  ) {
    if ('component' in manifest.provider) this.loadedSha256 = manifest.provider.sha256;
  }

  get sha256(): string | null {
    return this.loadedSha256;
  }

  async plan(manifest: ActionManifest, params: JsonObject): Promise<ProviderResult<Effect[]>> {
    const out = await this.call(manifest, 'plan', [requestText(manifest, params)]);
    if (out.kind === 'refused') return { ok: false, message: out.message };
    if (out.kind === 'failed') throw new LatticeError('PROVIDER_FAILED', out.message);
    const plan = parsePlan(out.value);
    if (!plan.ok) throw new LatticeError('PROVIDER_FAILED', plan.message);
    if (plan.effects.length === 0 && out.finished !== undefined) this.finishedEarly.set(params, out.finished);
    return { ok: true, value: plan.effects };
  }

  async finish(manifest: ActionManifest, params: JsonObject, results: readonly EffectResult[]): Promise<ProviderResult<JsonValue>> {
    const early = results.length === 0 ? this.finishedEarly.get(params) : undefined;
    if (early !== undefined) this.finishedEarly.delete(params);
    const out = early ?? (await this.call(manifest, 'finish', [requestText(manifest, params), JSON.stringify(results)]));
    if (out.kind !== 'ok') return { ok: false, message: out.message };
    try {
      return { ok: true, value: JSON.parse(out.value) as JsonValue };
    } catch {
      return { ok: false, message: 'the output is not JSON' }; // the parser's message would echo the output
    }
  }

  private async call(manifest: ActionManifest, fn: 'plan' | 'finish', args: readonly string[]): Promise<CallOutcome> {
    let component: Loaded;
    try {
      component = await this.runner.load(manifest);
    } catch (error) {
      return { kind: 'failed', message: describeError(error) };
    }
    this.loadedSha256 = component.sha256;
    return this.runner.call(manifest, fn, args, component);
  }
}
