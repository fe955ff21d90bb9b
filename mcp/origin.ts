/**
 * Where a request to `lattice mcp --http` says it comes from: its `Host` and `Origin` headers, checked before the
 * bearer secret, the body or anything kept per request (DNS rebinding; MCP 2025-11-25, Streamable HTTP: a present,
 * invalid Origin is answered 403).
 *
 *   Host     must name this server: a loopback name (`127.0.0.1`, `localhost`, `[::1]`, or the address it is bound
 *            to) with its port. A missing Host is refused.
 *   Origin   absent (every non-browser MCP client; the bearer secret authenticates those), or a page served from one
 *            of those same loopback authorities over http. Any other origin (another site, another port on
 *            loopback, `https`, the opaque `null` of a sandboxed frame or a file) is refused.
 *
 * Both headers are attacker-controlled and compared as whole strings (lowercased) against the few allowed values,
 * never parsed: there is no parser to disagree with. Written here because the MCP SDK offers only an Express
 * middleware (Host only, any port) and a deprecated check inside its transport, which exists only after a session
 * object was made for the request.
 */
import type { IncomingHttpHeaders } from 'node:http';

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/** The `Host` values this server answers to: each loopback name (and the bound address) with the bound port. */
export function loopbackAuthorities(boundHost: string, port: number): ReadonlySet<string> {
  const bound = boundHost.includes(':') ? `[${boundHost}]` : boundHost;
  const names = new Set([...LOOPBACK_NAMES, bound.toLowerCase()]);
  // A client omits the default port from both headers (RFC 9110 §7.2, RFC 6454 §6.1).
  return new Set([...names].flatMap((name) => (port === 80 ? [`${name}:80`, name] : [`${name}:${port}`])));
}

/** Why a request is refused by its Host or Origin, or null when both name this server. */
export function foreignSource(headers: IncomingHttpHeaders, authorities: ReadonlySet<string>): string | null {
  const host = headers.host;
  if (host === undefined || host === '') return 'the request has no Host header';
  if (!authorities.has(host.toLowerCase())) return `the Host header ${quote(host)} does not name this loopback server (DNS rebinding is refused)`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  const prefix = 'http://';
  const lowered = origin.toLowerCase();
  if (!lowered.startsWith(prefix) || !authorities.has(lowered.slice(prefix.length))) {
    return `the Origin ${quote(origin)} is not this server's own (http://127.0.0.1, localhost or [::1] on its port); pages of other origins may not use it`;
  }
  return null;
}

/** A header value for a message: quoted, bounded, control characters escaped by JSON. */
function quote(value: string): string {
  return JSON.stringify(value.slice(0, 100));
}
