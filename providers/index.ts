/**
 * The providers a gate (or a command) runs: the built-in components and the operator's own, in a worker pool.
 * `locations` says where the worker module and the built-in components are, which depends on how lattice was
 * built (the CLI bundle passes paths beside itself).
 */
import type { GateConfig } from '../core/config/config.ts';
import type { HomePaths } from '../core/home.ts';
import type { KeyRing } from '../core/keys/keyring.ts';
import type { ProviderHostFactory } from '../core/pipeline/provider.ts';
import { RELEASE_KEY } from '../core/trust/release-key.ts';
import { ProviderRunner } from './runner/runner.ts';
import type { CacheKeys } from './runner/transpile.ts';

export interface ProviderLocations {
  readonly workerUrl: URL;
  readonly builtinDir: string;
}

export function providerRunner(locations: ProviderLocations, context: { readonly paths: HomePaths; readonly keys: KeyRing | null; readonly config: GateConfig }): ProviderRunner {
  const { config } = context;
  return new ProviderRunner({
    paths: context.paths,
    keys: context.keys === null ? null : liveKeys(context.keys),
    builtinDir: locations.builtinDir,
    releaseKeys: [RELEASE_KEY],
    workerUrl: locations.workerUrl,
    workers: config.providers.workers,
    heapMb: config.providers.heapMb,
    memoryMb: config.providers.memoryMb,
    maxOutputChars: config.providers.maxOutputKb * 1024,
    maxQueue: config.providers.queue,
    loadDeadlineMs: config.providers.loadTimeoutMs,
  });
}

/** The ring's keys as they are at each use: after a rotation the cache is signed by the new key, never the retired one. */
function liveKeys(ring: KeyRing): CacheKeys {
  return {
    get signer() {
      return ring.active;
    },
    get publicKeys() {
      return ring.publicKeys;
    },
  };
}

export function componentProviders(locations: ProviderLocations): ProviderHostFactory {
  return (context) => providerRunner(locations, context);
}
