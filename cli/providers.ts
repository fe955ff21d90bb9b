/** Where the CLI finds the provider worker and the built-in components (beside the bundle, or inside the binary). */
import { pathToFileURL } from 'node:url';
import { shippedFile, shippedTree } from '../core/runtime.ts';
import type { ProviderLocations } from '../providers/index.ts';

export function providerLocations(): ProviderLocations {
  return { workerUrl: pathToFileURL(shippedFile('provider-worker')), builtinDir: shippedTree('components') };
}
