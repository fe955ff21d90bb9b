/**
 * The built-in providers, by the name a manifest gives in `[provider] builtin = "…"`. Component providers
 * (`[provider] component = "…"`) are refused here with PROVIDER_FAILED: this resolver runs only built-ins.
 */
import { LatticeError } from '../../core/errors.ts';
import type { BuiltinProvider } from '../../core/actions/manifest.ts';
import type { Provider, ProviderResolver } from '../../core/pipeline/provider.ts';
import { echo } from './echo.ts';
import { fsRead, fsWrite } from './fs.ts';
import { httpRequest, httpTemplate } from './http.ts';

const BUILTINS: Readonly<Record<BuiltinProvider, Provider>> = {
  echo,
  'http.request': httpRequest,
  'http.template': httpTemplate,
  'fs.read': fsRead,
  'fs.write': fsWrite,
};

export const builtinProviders: ProviderResolver = (manifest) => {
  if ('builtin' in manifest.provider) return BUILTINS[manifest.provider.builtin];
  throw new LatticeError('PROVIDER_FAILED', `${manifest.id} names a component provider (${manifest.provider.component}); this gate runs built-in providers only`);
};
