/**
 * `fs.read` and `fs.write`: one file beneath the manifest's root. The plan carries the normalized relative path
 * (and for a write the content with its size and SHA-256); the sink check refuses `..`, absolute paths and deny
 * globs, and the host refuses symlinks on the path when it performs the effect.
 */
import type { JsonObject } from '../../core/canonical.ts';
import { sha256Hex } from '../../core/crypto/index.ts';
import type { EffectResult } from '../../core/pipeline/effects.ts';
import type { Provider, ProviderResult } from '../../core/pipeline/provider.ts';
import { normalizeRelative } from '../../core/pipeline/sinks.ts';

function only<K extends EffectResult['kind']>(results: readonly EffectResult[], kind: K): ProviderResult<Extract<EffectResult, { kind: K }>> {
  const [result] = results;
  return results.length === 1 && result?.kind === kind ? { ok: true, value: result as Extract<EffectResult, { kind: K }> } : { ok: false, message: `expected one ${kind} result` };
}

/** A string member the request schema requires; anything else refuses the plan (the schema should have). */
function text(params: JsonObject, name: string): string | null {
  const value = params[name];
  return typeof value === 'string' ? value : null;
}

export const fsRead: Provider = {
  sha256: null,
  plan(_manifest, params) {
    const path = text(params, 'path');
    if (path === null) return Promise.resolve({ ok: false, message: 'params.path must be a string' });
    return Promise.resolve({ ok: true, value: [{ kind: 'fs.read', path: normalizeRelative(path) }] });
  },
  finish(_manifest, _params, results) {
    const r = only(results, 'fs.read');
    if (!r.ok) return Promise.resolve(r);
    const { path, content, encoding, bytes, sha256 } = r.value;
    return Promise.resolve({ ok: true, value: { path, content, encoding, bytes, sha256 } });
  },
};

export const fsWrite: Provider = {
  sha256: null,
  plan(_manifest, params) {
    const content = text(params, 'content');
    const path = text(params, 'path');
    if (content === null || path === null) return Promise.resolve({ ok: false, message: 'params.path and params.content must be strings' });
    return Promise.resolve({ ok: true, value: [{ kind: 'fs.write', path: normalizeRelative(path), content, bytes: Buffer.byteLength(content), sha256: sha256Hex(content) }] });
  },
  finish(_manifest, _params, results) {
    const r = only(results, 'fs.write');
    if (!r.ok) return Promise.resolve(r);
    const { path, bytes, sha256, created } = r.value;
    return Promise.resolve({ ok: true, value: { path, bytes, sha256, created } });
  },
};
