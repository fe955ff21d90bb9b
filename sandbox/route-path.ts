/**
 * The path a credential route forwards: the agent's request target (attacker-controlled), normalised, appended to
 * the route's base path (`https://gateway.example.com/v1/anthropic` → `/v1/anthropic`), and never above it.
 *
 * Fail closed: dot segments are resolved (RFC 3986 §5.2.4), counting percent-encoded dots (`%2e`) as dots, and a
 * target that climbs above its root is refused, never clamped. Refused outright, because servers disagree on what
 * they mean: percent-encoded `/`, `\` or NUL, a literal `\`, anything still percent-encoded after one decoding
 * (double encoding), a dot segment with `;` parameters (`..;/`), malformed percent-encoding, a fragment, a byte
 * outside printable ASCII, and any target that is not origin-form. Other segments are forwarded as written.
 * By hand: WHATWG URL (node:url) would resolve `..` but clamps at the root instead of refusing, and it decodes
 * neither `%2e` nor `%2f`, so it cannot say whether a path leaves the base.
 */
export type RoutePath = { readonly ok: true; readonly path: string; readonly forward: string } | { readonly ok: false; readonly reason: string };

const refuse = (reason: string): RoutePath => ({ ok: false, reason });

/** `base` is the route's base path without a trailing slash ('' for the upstream's root). */
export function routePath(base: string, target: string): RoutePath {
  if (!target.startsWith('/')) return refuse('only origin-form request targets (a path) are forwarded');
  if (/[^\x21-\x7e]/.test(target)) return refuse('a control, space or non-ASCII character in the request target (percent-encode it)');
  const q = target.indexOf('?');
  const [raw, query] = q < 0 ? [target, ''] : [target.slice(0, q), target.slice(q)];
  if (target.includes('#')) return refuse('a request target may not carry a fragment (#)');
  if (raw.includes('\\')) return refuse('a backslash in the path (some servers read it as /)');
  const out: string[] = [];
  const segments = raw.split('/').slice(1);
  for (const [i, segment] of segments.entries()) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return refuse('malformed percent-encoding in the path'); // decodeURIComponent's only failure: URIError
    }
    if (/[/\\\0]/.test(decoded)) return refuse('a percent-encoded /, \\ or NUL in the path');
    if (/%[0-9a-f]{2}/i.test(decoded)) return refuse('double percent-encoding in the path');
    const bare = decoded.split(';')[0];
    const dot = bare === '.' || bare === '..';
    if (dot && decoded !== bare) return refuse('a dot segment with parameters (;) in the path');
    if (decoded === '..' && out.pop() === undefined) return refuse('the path climbs above the route\'s base path (..)');
    if (!dot) out.push(segment);
    else if (i === segments.length - 1) out.push(''); // `/a/..` is `/`: a trailing dot segment leaves a slash
  }
  const path = `/${out.join('/')}`;
  return { ok: true, path, forward: `${base}${path}${query}` };
}
