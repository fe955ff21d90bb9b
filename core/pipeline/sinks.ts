/**
 * Pipeline step 3, second half: every effect a provider planned is checked against the manifest's sinks before
 * policy sees it. Plans are derived from attacker-controlled params, so anything not positively allowed is refused:
 *
 * - any: its kind must be one the manifest declares (a provider's capabilities are the manifest's, not its own).
 * - http: the URL must parse, carry no credentials or fragment, be sent as written (no `.`/`..` segment, also as
 *   `%2e`, no backslash or whitespace), in a template action have no encoded slash in its path (a param may not add
 *   a segment), and its scheme, host (exact, or a subdomain of a `*.` entry), port and method must all match one
 *   `[[sinks.http]]` entry; headers must be plain tokens without
 *   CR/LF, never framing or hop-by-hop headers, and never one the manifest injects a secret into (an agent must not
 *   choose the value of its own credential header). Only secrets the manifest declares may be named.
 * - fs: the path must be relative and normalized, match an allow glob and no deny glob of `[sinks.fs]` (fs-sink.ts
 *   says how deny globs match). Symlinks and hard links are the host's to refuse (effects).
 *
 * The host re-checks what only it can see when it performs the effect (the addresses a name resolves to, the
 * files actually on the path).
 */
import { isIP } from 'node:net';
import type { ActionManifest, HttpSink } from '../actions/manifest.ts';
import type { Effect, HttpEffect } from './effects.ts';
import { checkFsPath } from './fs-sink.ts';

export type SinkCheck = { readonly ok: true } | { readonly ok: false; readonly effect: number; readonly message: string };

const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'expect', 'cookie']);
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

export function checkSinks(manifest: ActionManifest, effects: readonly Effect[]): SinkCheck {
  for (const [index, effect] of effects.entries()) {
    const problem = checkEffect(manifest, effect);
    if (problem !== null) return { ok: false, effect: index, message: problem };
  }
  return { ok: true };
}

function checkEffect(manifest: ActionManifest, effect: Effect): string | null {
  if (!manifest.effects.includes(effect.kind)) return `${manifest.id} does not declare ${effect.kind} effects (provider.effects)`;
  switch (effect.kind) {
    case 'http':
      return checkHttp(manifest, effect);
    case 'fs.read':
    case 'fs.write':
      return checkFsPath(manifest, effect.path);
  }
}

/** The sink entry that allows this request, if any: the one rule the planner's check and the host both apply. */
export function matchHttpSink(sinks: readonly HttpSink[], url: URL, method: string): HttpSink | undefined {
  const scheme = url.protocol.slice(0, -1);
  const host = url.hostname.toLowerCase();
  const port = url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port);
  return sinks.find((s) => s.scheme === scheme && hostMatches(s.host, host) && s.ports.includes(port) && s.methods.includes(method));
}

/** `example.com` matches itself only; `*.example.com` matches its subdomains, not the apex, and never an IP address. */
function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (!p.startsWith('*.')) return p === host;
  if (isIP(host.replace(/^\[(.*)\]$/, '$1')) !== 0) return false;
  const suffix = p.slice(1);
  return host.endsWith(suffix) && host.length > suffix.length;
}

/** `scheme://authority` and the path as written (up to `?` or `#`), for a URL free of backslashes and whitespace. */
const RAW_PATH = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+([^?#]*)/i;
/** `.`, `..` and their `%2e` spellings: the segments the URL parser removes. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * Why the URL's path would not be sent as written, or could name another resource than its params say; null when
 * neither. The WHATWG parser (and so undici) removes `.` and `..` segments, `%2e` spellings included, reads a
 * backslash as a slash and drops tabs and line breaks: the URL policy saw would not be the URL sent. In a template
 * action every `/` of the path is the template's own: a param that carried one (filled in as `%2F`, a backslash as
 * `%5C`) would add a segment at a server that decodes before it routes. Exported for the host's re-check.
 */
export function checkUrlPath(manifest: ActionManifest, raw: string): string | null {
  if (/[\0-\x20\x7f\\]/.test(raw)) return 'the URL contains a space, a control character or a backslash; percent-encode it';
  const path = RAW_PATH.exec(raw)?.[1];
  if (path === undefined) return 'the URL is not written as scheme://host/path';
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment))) {
    return 'the URL path has a . or .. segment (or a %2e spelling of one), which would be removed before sending';
  }
  if (manifest.template !== null && /%(?:2f|5c)/i.test(path)) {
    return `the URL path has an encoded slash (%2F or %5C); each path param of ${manifest.id}'s template must be one segment`;
  }
  return null;
}

function checkHttp(manifest: ActionManifest, effect: HttpEffect): string | null {
  let url: URL;
  try {
    url = new URL(effect.url);
  } catch {
    return 'the URL does not parse'; // the parser's message would echo the attacker's URL
  }
  if (url.username !== '' || url.password !== '') return 'URLs with credentials are refused';
  if (url.hash !== '') return 'URLs with a fragment are refused';
  const path = checkUrlPath(manifest, effect.url);
  if (path !== null) return path;
  if (matchHttpSink(manifest.sinks.http, url, effect.method) === undefined) {
    return `${effect.method} ${url.protocol}//${url.host} is not allowed by ${manifest.id}'s http sinks`;
  }
  const injected = new Set(manifest.secrets.map((s) => s.header.toLowerCase()));
  for (const [name, value] of Object.entries(effect.headers)) {
    if (!HEADER_NAME.test(name)) return `header ${JSON.stringify(name.slice(0, 64))} is not a lower-case header name`;
    if (FORBIDDEN_HEADERS.has(name) || name.startsWith('proxy-')) return `header ${name} is set by the host, not the plan`;
    if (injected.has(name)) return `header ${name} carries a secret the host injects; it cannot be set by the request`;
    if (/[\r\n\0]/.test(value)) return `header ${name} contains a line break or NUL`;
  }
  for (const name of effect.secrets) {
    if (!manifest.secrets.some((s) => s.name === name)) return `secret ${JSON.stringify(name.slice(0, 64))} is not declared by ${manifest.id}`;
  }
  return null;
}
