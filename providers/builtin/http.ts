/**
 * `http.request` (the params are the request) and `http.template` (the manifest's `[template]` is the request,
 * with `{params.x}` placeholders). Both plan exactly one HTTP effect that names every secret the manifest declares
 * (injected by the host, never seen here) and return the response as output: JSON bodies parsed, others as text.
 *
 * Placeholders: in the URL each value is percent-encoded (a param cannot add path segments or a query); in header
 * values it is inserted as text (the sink check refuses line breaks); in the body a string that is exactly one
 * placeholder takes the param's JSON value, and is left out when the param is absent; a placeholder inside a
 * longer string is inserted as text. A placeholder naming a missing param in the URL or a header refuses the plan.
 */
import type { JsonObject, JsonValue } from '../../core/canonical.ts';
import type { ActionManifest } from '../../core/actions/manifest.ts';
import type { EffectResult, HttpEffect, HttpMethod } from '../../core/pipeline/effects.ts';
import type { Provider, ProviderResult } from '../../core/pipeline/provider.ts';

const PLACEHOLDER = /\{params\.([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE = /^\{params\.([A-Za-z_][A-Za-z0-9_]*)\}$/;

class Missing extends Error {}

function text(value: JsonValue | undefined, name: string): string {
  if (value === undefined || value === null) throw new Missing(`params.${name} is required by the request template`);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function fill(template: string, params: JsonObject, encode: (s: string) => string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => encode(text(Object.hasOwn(params, name) ? params[name] : undefined, name)));
}

/** The body template with params filled in; `undefined` means "leave this member out". */
function fillBody(node: JsonValue, params: JsonObject): JsonValue | undefined {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node);
    if (whole !== null) return Object.hasOwn(params, whole[1]!) ? params[whole[1]!] : undefined;
    return fill(node, params, (s) => s);
  }
  if (Array.isArray(node)) return node.flatMap((n) => fillBody(n, params) ?? []);
  if (node !== null && typeof node === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(node)) {
      const filled = fillBody(v, params);
      if (filled !== undefined) out[k] = filled;
    }
    return out;
  }
  return node;
}

function secretsOf(manifest: ActionManifest): string[] {
  return manifest.secrets.map((s) => s.name);
}

function lowerKeys(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

function responseOutput(results: readonly EffectResult[]): ProviderResult<JsonValue> {
  const [r] = results;
  if (results.length !== 1 || r?.kind !== 'http') return { ok: false, message: 'expected one http result' };
  let body: JsonValue = r.body;
  if (/^application\/([a-z.+-]*\+)?json\b/i.test(r.headers['content-type'] ?? '') && !r.truncated) {
    try {
      body = JSON.parse(r.body) as JsonValue;
    } catch {
      body = r.body; // a server that says JSON and sends something else: the agent gets the text as it came
    }
  }
  return { ok: true, value: { status: r.status, headers: r.headers, body, bytes: r.bytes, sha256: r.sha256, truncated: r.truncated } };
}

export const httpRequest: Provider = {
  sha256: null,
  plan(manifest, params) {
    const url = params['url'];
    if (typeof url !== 'string') return Promise.resolve({ ok: false, message: 'params.url must be a string' });
    const effect: HttpEffect = {
      kind: 'http',
      method: params['method'] as HttpMethod,
      url,
      headers: lowerKeys(params['headers'] as Record<string, unknown> | undefined),
      body: typeof params['body'] === 'string' ? params['body'] : null,
      secrets: secretsOf(manifest),
    };
    return Promise.resolve({ ok: true, value: [effect] });
  },
  finish: (_manifest, _params, results) => Promise.resolve(responseOutput(results)),
};

export const httpTemplate: Provider = {
  sha256: null,
  plan(manifest, params) {
    const t = manifest.template as { method?: string; url?: string; headers?: Record<string, string>; body?: JsonValue } | null;
    if (t === null || typeof t.url !== 'string' || typeof t.method !== 'string') return Promise.resolve({ ok: false, message: `${manifest.id} has no usable [template]` });
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(t.headers ?? {})) headers[k.toLowerCase()] = fill(String(v), params, (s) => s);
      const body = t.body === undefined ? undefined : fillBody(t.body, params);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const effect: HttpEffect = {
        kind: 'http',
        method: t.method.toUpperCase() as HttpMethod,
        url: fill(t.url, params, encodeURIComponent),
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        secrets: secretsOf(manifest),
      };
      return Promise.resolve({ ok: true, value: [effect] });
    } catch (error) {
      if (error instanceof Missing) return Promise.resolve({ ok: false, message: error.message });
      throw error;
    }
  },
  finish: (_manifest, _params, results) => Promise.resolve(responseOutput(results)),
};
