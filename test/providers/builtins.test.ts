/**
 * The built-in components against a reference: the same semantics written in TypeScript (what the built-ins were
 * before they became AssemblyScript components), run on hand-picked edge cases and on a few hundred seeded random
 * inputs full of what breaks hand-written JSON and URL code: quotes, backslashes, control characters, U+2028,
 * astral characters, unpaired surrogates and placeholder look-alikes. Plans and outputs must agree; where the
 * reference would have thrown (encodeURIComponent on an unpaired surrogate), the component must refuse.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseManifest, type ActionManifest } from '../../core/actions/manifest.ts';
import { ActionRegistry } from '../../core/actions/registry.ts';
import type { JsonObject, JsonValue } from '../../core/canonical.ts';
import { loadConfig } from '../../core/config/config.ts';
import { homePaths } from '../../core/home.ts';
import type { EffectResult } from '../../core/pipeline/effects.ts';
import { normalizeRelative } from '../../core/pipeline/fs-sink.ts';
import { providerRunner } from '../../providers/index.ts';
import { ROOT, tempDir } from '../helpers.ts';

// ---- the reference: the built-ins' semantics in TypeScript --------------------------------------------------

const PLACEHOLDER = /\{params\.([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE = /^\{params\.([A-Za-z_][A-Za-z0-9_]*)\}$/;

class Refused extends Error {}

function text(value: JsonValue | undefined, name: string): string {
  if (value === undefined || value === null) throw new Refused(`params.${name} is required by the request template`);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function fill(template: string, params: JsonObject, encode: (s: string) => string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => encode(text(Object.hasOwn(params, name) ? params[name] : undefined, name)));
}

function fillBody(node: JsonValue, params: JsonObject): JsonValue | undefined {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node);
    if (whole?.[1] !== undefined) return Object.hasOwn(params, whole[1]) ? params[whole[1]] : undefined;
    return fill(node, params, (s) => s);
  }
  // (The TypeScript built-in used flatMap here, which spliced an array param into the list; the component keeps it
  // as one element, as the placeholder rule says.)
  if (Array.isArray(node)) return node.map((n) => fillBody(n, params)).filter((n) => n !== undefined);
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

function encodeComponent(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    throw new Refused('a URL parameter contains an unpaired surrogate'); // URIError: the component refuses instead
  }
}

type Template = { method: string; url: string; headers?: Record<string, string>; body?: JsonValue };

/** The expected plan or the refusal. */
function referencePlan(manifest: ActionManifest, params: JsonObject): { ok: true; effects: JsonValue[] } | { ok: false } {
  const t = manifest.template as Template;
  try {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(t.headers ?? {})) headers[k.toLowerCase()] = fill(v, params, (s) => s);
    const body = t.body === undefined ? undefined : fillBody(t.body, params);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const url = fill(t.url, params, encodeComponent);
    return { ok: true, effects: [{ kind: 'http', method: t.method.toUpperCase(), url, headers, body: body === undefined ? null : JSON.stringify(body), secrets: manifest.secrets.map((s) => s.name) }] };
  } catch (error) {
    if (error instanceof Refused) return { ok: false };
    throw error;
  }
}

function referenceOutput(r: Extract<EffectResult, { kind: 'http' }>): JsonValue {
  let body: JsonValue = r.body;
  if (/^application\/([a-z.+-]*\+)?json\b/i.test(r.headers['content-type'] ?? '') && !r.truncated) {
    try {
      body = JSON.parse(r.body) as JsonValue;
    } catch {
      body = r.body;
    }
  }
  return { status: r.status, headers: r.headers, body, bytes: r.bytes, sha256: r.sha256, truncated: r.truncated };
}

// ---- inputs ----------------------------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'Z', '0', ' ', '"', '\\', '/', '{', '}', '%', '&', '?', '#', '=', '+', '\n', '\r', '\t', '\u0000', '\u0001', '\u001f', '\u007f', '\u0080', 'é', 'ß', '\u2028', '\u2029', '\ufeff', '\uffff', '😀', '\ud800', '\udc00', '{params.a}', '{params.', '{params.9}', '\\u0041', 'null'];

function randomString(next: () => number, max = 12): string {
  let s = '';
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

function randomValue(next: () => number, depth = 0): JsonValue {
  const pick = next();
  if (depth > 3 || pick < 0.45) return randomString(next);
  if (pick < 0.55) return [0, -1, 1.5, 1e21, 12345678901234567000, -0.000001, 2 ** 53 + 2][Math.floor(next() * 7)] ?? 0;
  if (pick < 0.6) return next() < 0.5;
  if (pick < 0.65) return null;
  if (pick < 0.8) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  const obj: JsonObject = {};
  for (let i = Math.floor(next() * 4); i > 0; i--) obj[randomString(next, 4)] = randomValue(next, depth + 1);
  return obj;
}

/** Params for a template naming a, b and c: each present with a random value, or absent. */
function randomParams(next: () => number): JsonObject {
  const params: JsonObject = {};
  for (const name of ['a', 'b', 'c']) if (next() < 0.85) params[name] = randomValue(next);
  if (next() < 0.3) params[randomString(next, 5)] = randomValue(next);
  return params;
}

function manifest(id: string, template: string, secrets = ''): ActionManifest {
  const text = `id = "${id}"\nversion = "1.0.0"\ndescription = "t"\nrisk = "low"\n[provider]\nbuiltin = "http.template"\n[request.schema]\ntype = "object"\n[[sinks.http]]\nhost = "api.example.com"\nmethods = ["GET", "POST"]\n${secrets}\n[template]\n${template}`;
  return parseManifest(text, id);
}

const TEMPLATES = [
  manifest('t.url', 'method = "get"\nurl = "https://api.example.com/items/{params.a}/x?q={params.b}&r={params.a}{params.c}"'),
  manifest(
    't.body',
    `method = "post"\nurl = "https://api.example.com/post"\n[template.headers]\nX-Note = "note {params.a} and {params.b}"\n[template.body]\nwhole = "{params.a}"\ntext = "say {params.b}!"\nliteral = "{params.}{params.9}{params"\nlist = ["{params.c}", "x{params.a}", 3, true]\nnested = { deeper = { value = "{params.b}", n = 1.5 } }`,
    '[[secrets]]\nname = "token"\nheader = "authorization"\nformat = "Bearer {secret}"\nsecret = "T"',
  ),
  manifest('t.typed', 'method = "POST"\nurl = "https://api.example.com/{params.a}"\n[template.headers]\nContent-Type = "application/vnd.x+json"\n[template.body]\nonly = "{params.c}"'),
];

// ---- the tests -------------------------------------------------------------------------------------------

describe('built-in components agree with the reference semantics', () => {
  const paths = homePaths(tempDir());
  const { config } = loadConfig(paths, undefined);
  const runner = providerRunner({ workerUrl: new URL(`file://${join(ROOT, 'dist/provider-worker.mjs')}`), builtinDir: join(ROOT, 'providers/components') }, { paths, keys: null, config });
  after(() => runner.close());

  async function componentPlan(m: ActionManifest, params: JsonObject): Promise<{ ok: true; effects: JsonValue[] } | { ok: false }> {
    const planned = await runner.resolve(m).plan(m, params);
    // The body is JSON text the component wrote; it must be exactly what JSON.stringify writes.
    return planned.ok ? { ok: true, effects: planned.value.map((e) => ({ ...e })) as JsonValue[] } : { ok: false };
  }

  it('http.template: hand-picked edge cases', async () => {
    const cases: [ActionManifest, JsonObject][] = [
      [TEMPLATES[0]!, { a: 'a/b?c#d', b: 'x y&z=1', c: '' }],
      [TEMPLATES[0]!, { a: '😀é', b: 5, c: { k: [1, null] } }],
      [TEMPLATES[0]!, { a: 'ok', b: null }], // a null param in the URL refuses
      [TEMPLATES[0]!, { a: '\ud800' }], // an unpaired surrogate cannot be percent-encoded: refused
      [TEMPLATES[1]!, {}], // whole placeholders absent: members left out; a placeholder in text refuses
      [TEMPLATES[1]!, { a: null, b: '"\\\n\u2028', c: [1, 'two'] }],
      [TEMPLATES[1]!, { a: { nested: '{params.b}' }, b: '{params.a}' }], // no second expansion
      [TEMPLATES[2]!, { a: 'x' }], // the body is one absent placeholder: an empty object is still sent
      [TEMPLATES[2]!, { a: 'x', c: '\u0000\u001f\u007f' }],
    ];
    for (const [m, params] of cases) {
      assert.deepEqual(await componentPlan(m, params), referencePlan(m, params), `${m.id} ${JSON.stringify(params)}`);
    }
  });

  it('http.template: 600 seeded random params across three templates', async () => {
    let refused = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      for (const m of TEMPLATES) {
        const params = randomParams(next);
        const expected = referencePlan(m, params);
        if (!expected.ok) refused++;
        assert.deepEqual(await componentPlan(m, params), expected, `seed ${seed}, ${m.id}, params ${JSON.stringify(params)}`);
      }
    }
    assert.ok(refused > 20 && refused < 500, `both outcomes are exercised (${refused} of 600 refused)`);
  });

  it('http.request: the params are the request; header names lower-cased, a later duplicate winning', async () => {
    const registry = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: ['api.example.com'] });
    const request = registry.get('http.request');
    const names = ['X-A', 'x-a', 'Accept', 'ÉTAG', 'İd', 'ß', 'x-😀'];
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(3000 + seed);
      const headers: Record<string, string> = {};
      for (let i = Math.floor(next() * 4); i > 0; i--) headers[names[Math.floor(next() * names.length)] ?? 'x'] = randomString(next);
      const params: JsonObject = { method: next() < 0.5 ? 'GET' : 'POST', url: `https://api.example.com/${randomString(next)}`, headers };
      if (next() < 0.7) params['body'] = next() < 0.8 ? randomString(next) : randomValue(next);
      const lower: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
      const expected = [{ kind: 'http', method: params['method'], url: params['url'], headers: lower, body: typeof params['body'] === 'string' ? params['body'] : null, secrets: [] }];
      const planned = await runner.resolve(request).plan(request, params);
      assert.deepEqual(planned, { ok: true, value: expected }, `seed ${seed}: ${JSON.stringify(params)}`);
    }
  });

  it('echo returns any params unchanged, and the HTTP finish parses JSON bodies exactly when the reference does', async () => {
    const registry = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: [] });
    const echo = registry.get('echo');
    const github = registry.get('github.issue.create');
    const types = ['application/json', 'Application/JSON; charset=utf-8', 'application/vnd.github+json', 'application/jsonp', 'application/x+json2', 'text/json', 'text/plain', ''];
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(1000 + seed);
      const params = randomParams(next);
      const echoed = await runner.resolve(echo).finish(echo, params, []);
      assert.deepEqual(echoed, { ok: true, value: params }, `seed ${seed}`);

      const body = next() < 0.5 ? JSON.stringify(randomValue(next)) : randomString(next);
      const contentType = types[Math.floor(next() * types.length)] ?? '';
      const result: Extract<EffectResult, { kind: 'http' }> = { kind: 'http', status: 200, headers: contentType === '' ? {} : { 'content-type': contentType }, body, bytes: body.length, sha256: '0'.repeat(64), truncated: next() < 0.2 };
      const output = await runner.resolve(github).finish(github, {}, [result]);
      assert.deepEqual(output, { ok: true, value: referenceOutput(result) }, `seed ${seed}: ${contentType} ${JSON.stringify(body)}`);
    }
  });

  it('passes a 1 MiB JSON response and 1 MiB of params through, within the default deadline and memory cap', async () => {
    const registry = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: [] });
    const github = registry.get('github.issue.create');
    const items: JsonValue[] = [];
    for (let i = 0; i < 30000; i++) items.push({ n: i, tags: [true, null], note: 'say "hi"\n' });
    const body = JSON.stringify(items);
    assert.ok(body.length > 1_000_000);
    const result: Extract<EffectResult, { kind: 'http' }> = { kind: 'http', status: 200, headers: { 'content-type': 'application/json' }, body, bytes: body.length, sha256: '0'.repeat(64), truncated: false };
    // The incremental collector the guests used to run took longer than the deadline here.
    assert.deepEqual(await runner.resolve(github).finish(github, {}, [result]), { ok: true, value: referenceOutput(result) });

    const echo = registry.get('echo');
    const params: JsonObject = { lists: Array.from({ length: 300000 }, () => []), quotes: '"'.repeat(100000) };
    assert.ok((await runner.resolve(echo).plan(echo, params)).ok);
    assert.deepEqual(await runner.resolve(echo).finish(echo, params, []), { ok: true, value: params });
  });

  it('fs.read and fs.write normalise paths exactly as the host does', async () => {
    const registry = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: [] });
    const write = registry.get('fs.write');
    const parts = ['a', 'b', '.', '..', '', '/', '//', ' ', 'é', '\\', '.hidden', 'x.txt'];
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(2000 + seed);
      const path = Array.from({ length: 1 + Math.floor(next() * 6) }, () => parts[Math.floor(next() * parts.length)]).join(next() < 0.7 ? '/' : '');
      const content = randomString(next);
      const planned = await runner.resolve(write).plan(write, { path, content });
      const effect = planned.ok ? planned.value[0] : undefined;
      assert.ok(effect?.kind === 'fs.write', `seed ${seed}: ${JSON.stringify(planned)}`);
      assert.equal(effect.path, normalizeRelative(path), `seed ${seed}: ${JSON.stringify(path)}`);
      assert.equal(effect.content, content);
    }
  });
});
