/** Where the bundled CLI finds the provider worker and the built-in components: beside itself (scripts/build.mjs). */
import { fileURLToPath } from 'node:url';
import type { ProviderLocations } from '../providers/index.ts';

export const PROVIDER_LOCATIONS: ProviderLocations = {
  workerUrl: new URL('./provider-worker.mjs', import.meta.url),
  builtinDir: fileURLToPath(new URL('./components/', import.meta.url)),
};
