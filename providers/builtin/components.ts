/** The built-in providers and the component (providers/components/<file>.wasm) each one runs as. */
import type { BuiltinProvider } from '../../core/actions/manifest.ts';

export const BUILTIN_COMPONENTS: Readonly<Record<BuiltinProvider, string>> = {
  echo: 'echo',
  'http.request': 'http-request',
  'http.template': 'http-template',
  'fs.read': 'fs-read',
  'fs.write': 'fs-write',
};
