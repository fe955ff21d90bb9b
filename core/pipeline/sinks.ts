/**
 * Pipeline step 3, second half: every effect a provider planned is checked against the manifest's sinks before
 * policy sees it. Plans are derived from attacker-controlled params, so anything not positively allowed is refused:
 *
 * - any: its kind must be one the manifest declares (a provider's capabilities are the manifest's, not its own).
 * - http: the URL must parse, carry no credentials or fragment, and its scheme, host (exact, or a subdomain of a
 *   `*.` entry), port and method must all match one `[[sinks.http]]` entry; headers must be plain tokens without
 *   CR/LF, never framing or hop-by-hop headers, and never one the manifest injects a secret into (an agent must not
 *   choose the value of its own credential header). Only secrets the manifest declares may be named.
 * - fs: the path must be relative, without `..`, NUL or backslashes, and match an allow glob and no deny glob of
 *   `[sinks.fs]` (globs match dotfiles). Symlinks are the host's to refuse: they are never followed (effects).
 *
 * The host re-checks what only it can see when it performs the effect (the addresses a name resolves to, the
 * files actually on the path).
 */
import { isIP } from 'node:net';
import picomatch from 'picomatch';
import type { ActionManifest, HttpSink } from '../actions/manifest.ts';
import type { Effect, FsReadEffect, FsWriteEffect, HttpEffect } from './effects.ts';

export type SinkCheck = { readonly ok: true } | { readonly ok: false; readonly effect: number; readonly message: string };

const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'expect', 'cookie']);
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const MAX_PATH = 4096;

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
      return checkFs(manifest, effect);
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

function checkHttp(manifest: ActionManifest, effect: HttpEffect): string | null {
  let url: URL;
  try {
    url = new URL(effect.url);
  } catch {
    return 'the URL does not parse'; // the parser's message would echo the attacker's URL
  }
  if (url.username !== '' || url.password !== '') return 'URLs with credentials are refused';
  if (url.hash !== '') return 'URLs with a fragment are refused';
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

function checkFs(manifest: ActionManifest, effect: FsReadEffect | FsWriteEffect): string | null {
  const fs = manifest.sinks.fs;
  if (fs === null) return `${manifest.id} has no filesystem sink`;
  const path = effect.path;
  if (path.length === 0 || path.length > MAX_PATH) return 'the path is empty or too long';
  if (path.includes('\0') || path.includes('\\')) return 'the path contains NUL or a backslash';
  if (path.startsWith('/')) return 'absolute paths are refused; paths are relative to the root';
  const segments = path.split('/');
  if (segments.some((s) => s === '..')) return 'paths with .. are refused';
  if (segments.some((s) => s === '' || s === '.')) return 'the path is not normalized';
  if (!fs.allow.some((glob) => globMatcher(glob)(path))) return `${path} matches none of ${manifest.id}'s allowed paths`;
  const denied = fs.deny.find((glob) => globMatcher(glob)(path) || segments.some((_, i) => globMatcher(glob)(segments.slice(0, i + 1).join('/'))));
  if (denied !== undefined) return `${path} is denied by ${JSON.stringify(denied)}`;
  return null;
}

const matchers = new Map<string, (path: string) => boolean>();

function globMatcher(glob: string): (path: string) => boolean {
  let matcher = matchers.get(glob);
  if (matcher === undefined) {
    matcher = picomatch(glob, { dot: true, nobrace: false, noextglob: true });
    matchers.set(glob, matcher);
  }
  return matcher;
}

/**
 * Normalizes a relative path the way planners should: drops `.` and empty segments. Keeps what the check refuses
 * (`..`, a leading `/`) so that normalizing can never turn a refused path into an allowed one.
 */
export function normalizeRelative(path: string): string {
  if (path.startsWith('/')) return path;
  return path
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}
