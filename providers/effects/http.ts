/**
 * Performs an http effect: the one place a secret's plaintext enters a request.
 *
 * Fails closed. The effect is checked again against the manifest's `[[sinks.http]]` (scheme, host, port, method)
 * and refused (SINK_DENIED) when nothing matches, when its URL would not be sent as written or a template's path
 * param added a segment (sinks.ts, checkUrlPath), when it sets a hop-by-hop or framing header, or when its host
 * resolves to a non-public address and the sink does not `allow_private`. The connection goes to exactly the
 * addresses that were checked (the Agent's lookup returns only them), so a DNS answer that changes between the
 * check and the connect cannot redirect the request. Redirects are returned, never followed. A secret that would
 * break the header it goes into (CR, LF, NUL) is refused (EFFECT_FAILED) and never sent. The response is read up to
 * a limit; its body and the few headers passed on have every injected secret replaced by `[REDACTED]`, and errors
 * carry the host and the failure, redacted, never the underlying error (its message could quote request headers).
 */
import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import type { ActionManifest, HttpSink } from '../../core/actions/manifest.ts';
import { sha256Hex } from '../../core/crypto/index.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import type { EffectContext, EffectResult, HttpEffect } from '../../core/pipeline/effects.ts';
import { checkUrlPath, matchHttpSink } from '../../core/pipeline/sinks.ts';
import { isPublicAddress } from './address.ts';

export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/** Headers that frame the message or steer the connection: the host sets them, an effect may not. */
const FRAMING_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive']);
/** The response headers passed on to the provider; everything else stays with the host. */
const PASSED_HEADERS = ['content-type', 'content-length', 'etag', 'location', 'x-request-id', 'retry-after'] as const;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BREAKS_HEADER = /[\r\n\0]/;

interface Target {
  readonly url: URL;
  readonly scheme: 'http' | 'https';
  /** Lower-case, without the brackets of an IPv6 literal. */
  readonly host: string;
  readonly port: number;
}

export type Address = { readonly address: string; readonly family: number };
/** Every address a name resolves to. */
export type Resolver = (host: string) => Promise<readonly Address[]>;

export interface HttpOptions {
  readonly maxResponseBytes: number;
  /** How names are resolved: node:dns `lookup` unless a test stands in for DNS. */
  readonly resolve?: Resolver;
}

const systemResolver: Resolver = (host) => lookup(host, { all: true });

export async function performHttp(effect: HttpEffect, ctx: EffectContext, options: HttpOptions): Promise<EffectResult> {
  const target = parseTarget(effect.url);
  const pathProblem = checkUrlPath(ctx.manifest, effect.url);
  if (pathProblem !== null) throw denied(pathProblem);
  const sink = matchSink(ctx.manifest.sinks.http, target, effect.method);
  const { headers, secrets } = requestHeaders(effect, ctx);
  const addresses = await vetAddresses(target.host, sink.allowPrivate, ctx.signal, options.resolve ?? systemResolver);
  return await send(effect, target, headers, addresses, redactor(secrets), ctx.signal, options.maxResponseBytes);
}

function parseTarget(raw: string): Target {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw denied(`${JSON.stringify(raw.slice(0, 200))} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw denied(`the scheme ${url.protocol} is not http or https`);
  if (url.username !== '' || url.password !== '') throw denied('a URL may not carry credentials; secrets are injected by the host');
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return { url, scheme, host, port: url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port) };
}

function matchSink(sinks: readonly HttpSink[], t: Target, method: string): HttpSink {
  const sink = matchHttpSink(sinks, t.url, method);
  if (sink === undefined) throw denied(`${method} ${t.scheme}://${t.host}:${t.port} matches no [[sinks.http]] of the manifest`);
  return sink;
}

/** The effect's headers plus the injected secrets (which win), and every secret string to redact. */
function requestHeaders(effect: HttpEffect, ctx: EffectContext): { headers: Record<string, string>; secrets: string[] } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(effect.headers)) {
    headers[checkedName(name)] = value;
    if (BREAKS_HEADER.test(value)) throw denied(`the value of header ${name} contains CR, LF or NUL`);
  }
  const secrets: string[] = [];
  for (const name of effect.secrets) {
    const entry = declaredSecret(ctx.manifest, name);
    const value = ctx.secret(entry.secret);
    // A function replacement: a string one would expand `$&` and friends inside the secret.
    const formatted = entry.format.replace('{secret}', () => value);
    if (BREAKS_HEADER.test(formatted)) throw new LatticeError('EFFECT_FAILED', `secret ${name} contains CR, LF or NUL; it was not sent`);
    headers[checkedName(entry.header)] = formatted;
    if (value !== '') secrets.push(formatted, value);
  }
  return { headers, secrets };
}

function checkedName(name: string): string {
  const lower = name.toLowerCase();
  if (!TOKEN.test(name)) throw denied(`${JSON.stringify(name)} is not a valid header name`);
  if (FRAMING_HEADERS.has(lower) || lower.startsWith('proxy-')) throw denied(`header ${lower} is set by the host, not by an effect`);
  return lower;
}

function declaredSecret(manifest: ActionManifest, name: string): ActionManifest['secrets'][number] {
  const entry = manifest.secrets.find((s) => s.name === name);
  if (entry === undefined) throw denied(`secret ${name} is not declared in the manifest's [[secrets]]`);
  return entry;
}

/** The addresses the request may connect to: an IP literal itself, or everything the name resolves to, all checked. */
async function vetAddresses(host: string, allowPrivate: boolean, signal: AbortSignal, resolve: Resolver): Promise<readonly Address[]> {
  const family = isIP(host);
  let addresses: readonly Address[];
  try {
    addresses = family !== 0 ? [{ address: host, family }] : await resolve(host);
  } catch (error) {
    throw new LatticeError('EFFECT_FAILED', `cannot resolve ${host}: ${errorCode(error) ?? describeError(error)}`);
  }
  if (signal.aborted) throw timedOut(host);
  if (addresses.length === 0) throw new LatticeError('EFFECT_FAILED', `${host} resolves to no address`);
  for (const { address } of addresses) {
    if (!allowPrivate && !isPublicAddress(address)) {
      throw denied(`${host} resolves to ${address}, which is not a public address, and the sink does not allow_private`);
    }
  }
  return addresses;
}

/** A lookup that answers only for `host`, and only with the addresses that were checked. */
function pinnedLookup(host: string, addresses: readonly Address[]): LookupFunction {
  return (hostname, options, callback) => {
    const first = addresses[0];
    if (hostname.toLowerCase() !== host || first === undefined) {
      callback(Object.assign(new Error(`${hostname} was not vetted`), { code: 'ENOTFOUND' }), []);
    } else if (options.all === true) {
      callback(null, [...addresses]);
    } else {
      callback(null, first.address, first.family);
    }
  };
}

async function send(
  effect: HttpEffect,
  target: Target,
  headers: Record<string, string>,
  addresses: readonly Address[],
  redact: Redactor,
  signal: AbortSignal,
  maxBytes: number,
): Promise<EffectResult> {
  const agent = new Agent({ connect: { lookup: pinnedLookup(target.host, addresses) } });
  try {
    // undici's request() follows no redirects: a 3xx is the result.
    const response = await request(target.url, { dispatcher: agent, method: effect.method, headers, body: effect.body, signal });
    const { data, truncated } = await readCapped(response.body, maxBytes);
    return {
      kind: 'http',
      status: response.statusCode,
      headers: passedHeaders(response.headers, redact),
      bytes: data.length,
      sha256: sha256Hex(data),
      truncated,
      body: redact.text(new TextDecoder('utf-8').decode(data, { stream: truncated }), truncated),
    };
  } catch (error) {
    if (signal.aborted) throw timedOut(target.host);
    throw new LatticeError('EFFECT_FAILED', `http request to ${target.host} failed: ${redact.text(failureOf(error), false)}`);
  } finally {
    await agent.destroy();
  }
}

/** At most `maxBytes` of the body; reading stops (and the connection is dropped) as soon as the limit is reached. */
async function readCapped(body: AsyncIterable<Buffer>, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body) {
    if (chunk.length > maxBytes - size) {
      chunks.push(chunk.subarray(0, maxBytes - size));
      size = maxBytes;
      truncated = true;
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { data: Buffer.concat(chunks, size), truncated };
}

function passedHeaders(received: Record<string, string | string[] | undefined>, redact: Redactor): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = received[name];
    if (value !== undefined) out[name] = redact.text(Array.isArray(value) ? value.join(', ') : value, false);
  }
  return out;
}

interface Redactor {
  /** `text` with every secret replaced; when `cut`, also a secret's beginning left at the end by truncation. */
  text(text: string, cut: boolean): string;
}

function redactor(secrets: readonly string[]): Redactor {
  const longestFirst = [...new Set(secrets)].sort((a, b) => b.length - a.length);
  return {
    text(text, cut) {
      let out = longestFirst.reduce((t, s) => t.replaceAll(s, '[REDACTED]'), text);
      for (const s of cut ? longestFirst : []) {
        for (let n = Math.min(s.length - 1, out.length); n > 0; n--) {
          if (out.endsWith(s.slice(0, n))) {
            out = `${out.slice(0, -n)}[REDACTED]`;
            break;
          }
        }
      }
      return out;
    },
  };
}

/** What went wrong, without the error object itself: its code and message (an AggregateError's first cause). */
function failureOf(error: unknown): string {
  const inner = error instanceof AggregateError && error.errors.length > 0 ? (error.errors[0] as unknown) : error;
  const code = errorCode(error) ?? errorCode(inner);
  const message = describeError(inner) || describeError(error);
  return code === undefined ? message : `${code}: ${message}`;
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function timedOut(host: string): LatticeError {
  return new LatticeError('EFFECT_FAILED', `http request to ${host} timed out`);
}

function denied(message: string): LatticeError {
  return new LatticeError('SINK_DENIED', message);
}
