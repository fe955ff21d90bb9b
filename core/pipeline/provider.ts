/**
 * The provider contract: the code that turns an action's params into a plan (the exact effects it wants) and the
 * host-observed results of those effects into the output the agent receives. A provider only describes; the host
 * decides and performs. Both calls are asynchronous so a provider may run isolated (a WebAssembly component in a
 * worker with a deadline) without changing this contract.
 *
 * Core knows providers only through this interface; the built-ins and the component runner live in providers/.
 */
import type { ActionManifest } from '../actions/manifest.ts';
import type { JsonObject, JsonValue } from '../canonical.ts';
import type { GateConfig } from '../config/config.ts';
import type { HomePaths } from '../home.ts';
import type { KeyRing } from '../keys/keyring.ts';
import type { Effect, EffectResult } from './effects.ts';

export type ProviderResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export interface Provider {
  /** SHA-256 of the code that plans and finishes (a component's bytes); null for a built-in TypeScript provider. */
  readonly sha256: string | null;
  /** The effects for these (schema-valid, attacker-controlled) params; a refusal is the agent's fault (400). */
  plan(manifest: ActionManifest, params: JsonObject): Promise<ProviderResult<Effect[]>>;
  /** The output for the agent, from the params and the results, one per planned effect, in order. */
  finish(manifest: ActionManifest, params: JsonObject, results: readonly EffectResult[]): Promise<ProviderResult<JsonValue>>;
}

/** The provider for a manifest; throws PROVIDER_FAILED when none can be had (unknown built-in, bad component). */
export type ProviderResolver = (manifest: ActionManifest) => Provider;

/** What runs providers for a gate: made when the gate starts (with its home and keys), closed when it stops. */
export interface ProviderHost {
  readonly resolve: ProviderResolver;
  /** Loads and checks the provider of each manifest; the failures, by action id. */
  preload(manifests: readonly ActionManifest[]): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export type ProviderHostFactory = (context: { readonly paths: HomePaths; readonly keys: KeyRing; readonly config: GateConfig }) => ProviderHost;
