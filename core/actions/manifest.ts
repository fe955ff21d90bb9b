/**
 * Action manifests: what an action is, what it may touch and how its request must look, declared in TOML.
 *
 *   id, version, description, risk (low|medium|high|critical), tags, cost, timeout
 *   [provider]        builtin = "echo" | "http.request" | "http.template" | "fs.read" | "fs.write",
 *                     or component = "<file>.wasm" (in <home>/providers) with sha256 = "<hex>" and
 *                     effects = ["http", "fs.read", "fs.write"] (the kinds it may plan; none by default);
 *                     memory_mb (the component's memory cap), concurrency (calls at once; default: no limit
 *                     beyond the worker pool)
 *   [request.schema]  JSON Schema of the params (objects refuse unknown members unless the schema allows them)
 *   [[sinks.http]]    host, methods, scheme ("https", or "http" for a local service), ports (default [443], or [80]
 *                     for http), allow_private (default false: addresses the name resolves to must be public)
 *   [sinks.fs]        root, allow (globs, case-sensitive), deny (globs in any case; one without `/` names a file
 *                     or directory at any depth, as in .gitignore; see pipeline/fs-sink.ts)
 *   [[secrets]]       name, header, format ("Bearer {secret}"), secret (a name in the secret store)
 *   [template]        method, url, headers, body: for "http.template" providers, `{params.x}` placeholders
 *
 * A manifest is validated once, when it is loaded: the manifest against its own schema, the request schema by
 * compiling it with ajv (strict). Anything wrong is refused with a message naming the field; nothing is guessed.
 * Its digest is SHA-256 of its canonical JSON, recorded in the ledger when it is registered or changed.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { parse as parseToml } from 'smol-toml';
import { canonicalize, type JsonObject } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { parseDuration } from '../time.ts';
import { MANIFEST_SCHEMA, type RawManifest } from './manifest-schema.ts';
import { compiledOnUse } from '../server/validate.ts';

export const RISKS = ['low', 'medium', 'high', 'critical'] as const;
export type Risk = (typeof RISKS)[number];
export const BUILTIN_PROVIDERS = ['echo', 'http.request', 'http.template', 'fs.read', 'fs.write'] as const;
export type BuiltinProvider = (typeof BUILTIN_PROVIDERS)[number];
export type EffectKind = 'http' | 'fs.read' | 'fs.write';

/** The effect kinds each built-in plans (a component declares its own). */
const BUILTIN_EFFECTS: Readonly<Record<BuiltinProvider, readonly EffectKind[]>> = {
  echo: [],
  'http.request': ['http'],
  'http.template': ['http'],
  'fs.read': ['fs.read'],
  'fs.write': ['fs.write'],
};

export interface HttpSink {
  /** Exact host name, or `*.example.com` for its subdomains (not the apex). */
  readonly host: string;
  readonly scheme: 'https' | 'http';
  readonly methods: readonly string[];
  readonly ports: readonly number[];
  readonly allowPrivate: boolean;
}

export interface ActionManifest {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  readonly risk: Risk;
  readonly tags: readonly string[];
  readonly cost: number;
  readonly timeoutMs: number;
  readonly provider: { readonly builtin: BuiltinProvider } | { readonly component: string; readonly sha256: string };
  /** The effect kinds the provider may plan; any other is refused (SINK_DENIED) before policy sees it. */
  readonly effects: readonly EffectKind[];
  /** The provider's memory cap and concurrent calls, when the manifest sets them. */
  readonly memoryMb: number | null;
  readonly concurrency: number | null;
  readonly requestSchema: JsonObject;
  readonly sinks: {
    readonly http: readonly HttpSink[];
    readonly fs: { readonly root: string; readonly allow: readonly string[]; readonly deny: readonly string[] } | null;
  };
  readonly secrets: readonly { readonly name: string; readonly header: string; readonly format: string; readonly secret: string }[];
  readonly template: JsonObject | null;
  /** SHA-256 of the manifest's canonical JSON (as parsed from TOML). */
  readonly digest: string;
  /** Validates params against the request schema (compiled once). */
  readonly validateParams: ValidateFunction;
}

const validateManifest = compiledOnUse<RawManifest>(MANIFEST_SCHEMA, { allErrors: false });
// Request schemas come from manifest authors: strict mode refuses unknown keywords and ambiguous schemas.
let requestAjv: Ajv | undefined;

export function parseManifest(text: string, source: string): ActionManifest {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    throw invalid(source, `is not valid TOML: ${describeError(error)}`);
  }
  const plain = JSON.parse(JSON.stringify(raw)) as unknown; // TOML dates become strings; the digest is over JSON
  if (!validateManifest(plain)) {
    const e = validateManifest.errors?.[0];
    const at = e === undefined || e.instancePath === '' ? 'the manifest' : e.instancePath.slice(1).replaceAll('/', '.');
    const detail = e?.keyword === 'additionalProperties' ? `has an unknown key ${String(e.params['additionalProperty'])}` : (e?.message ?? 'is invalid');
    throw invalid(source, `${at} ${detail}`);
  }
  const m = plain;
  const provider = m.provider.builtin !== undefined && m.provider.component === undefined ? { builtin: m.provider.builtin } : componentProvider(m.provider, source);
  if ('builtin' in provider && m.provider.effects !== undefined) throw invalid(source, 'a built-in provider declares its own effects; provider.effects is for components');
  if ('builtin' in provider && provider.builtin === 'http.template' && m.template === undefined) throw invalid(source, 'an http.template provider needs a [template]');
  const effects = 'builtin' in provider ? BUILTIN_EFFECTS[provider.builtin] : (m.provider.effects ?? []);
  if (effects.some((e) => e.startsWith('fs.')) !== (m.sinks?.fs !== undefined)) {
    throw invalid(source, 'fs.read and fs.write effects need [sinks.fs], and only they may have it');
  }
  if (effects.includes('http') && (m.sinks?.http ?? []).length === 0) {
    throw invalid(source, 'http effects need at least one [[sinks.http]] host');
  }
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(m.timeout ?? '5s', 'timeout');
  } catch (error) {
    throw invalid(source, describeError(error));
  }
  const requestSchema = closeObjects(m.request.schema as JsonObject);
  let validateParams: ValidateFunction;
  try {
    validateParams = (requestAjv ??= new Ajv({ allErrors: false, strict: true, allowUnionTypes: true })).compile(requestSchema);
  } catch (error) {
    throw invalid(source, `request.schema is not a valid JSON Schema: ${describeError(error)}`);
  }
  for (const s of m.secrets ?? []) {
    if (!s.format.includes('{secret}')) throw invalid(source, `secrets.${s.name}.format must contain {secret}`);
  }
  return {
    id: m.id,
    version: m.version,
    description: m.description,
    risk: m.risk,
    tags: m.tags ?? [],
    cost: m.cost ?? 0,
    timeoutMs,
    provider,
    effects,
    memoryMb: m.provider.memory_mb ?? null,
    concurrency: m.provider.concurrency ?? null,
    requestSchema,
    sinks: {
      http: (m.sinks?.http ?? []).map((h) => {
        const scheme = h.scheme ?? 'https';
        return { host: h.host.toLowerCase(), scheme, methods: h.methods.map((x) => x.toUpperCase()), ports: h.ports ?? [scheme === 'https' ? 443 : 80], allowPrivate: h.allow_private ?? false };
      }),
      fs: m.sinks?.fs === undefined ? null : { root: m.sinks.fs.root, allow: m.sinks.fs.allow ?? ['**'], deny: m.sinks.fs.deny ?? [] },
    },
    secrets: m.secrets ?? [],
    template: (m.template as JsonObject | undefined) ?? null,
    digest: sha256Hex(canonicalize(m as unknown as JsonObject)),
    validateParams,
  };
}

/** Object schemas refuse unknown members unless the author said otherwise, at every depth. */
function closeObjects(schema: JsonObject): JsonObject {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = walk(v);
    if (out['type'] === 'object' && !('additionalProperties' in out) && !('unevaluatedProperties' in out)) out['additionalProperties'] = false;
    return out;
  };
  return walk(schema) as JsonObject;
}

function componentProvider(p: RawManifest['provider'], source: string): { component: string; sha256: string } {
  if (p.component === undefined || p.sha256 === undefined) throw invalid(source, 'provider needs builtin, or component with sha256');
  if (p.builtin !== undefined) throw invalid(source, 'provider has both builtin and component');
  return { component: p.component, sha256: p.sha256 };
}

function invalid(source: string, why: string): LatticeError {
  return new LatticeError('MANIFEST_INVALID', `${source}: ${why}`);
}
