/** `echo`: no effects; the output is the params, unchanged. For tests, demos and measuring the gate itself. */
import type { Provider } from '../../core/pipeline/provider.ts';

export const echo: Provider = {
  sha256: null,
  plan: () => Promise.resolve({ ok: true, value: [] }),
  finish: (_manifest, params) => Promise.resolve({ ok: true, value: params }),
};
