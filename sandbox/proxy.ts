/**
 * The sandbox's two network exits, served by `lattice sandbox` outside the sandbox on unix sockets that the helper
 * relays to loopback ports inside. Both use node:http's parser; neither parses HTTP by hand.
 *
 * 1. The CONNECT proxy: HTTPS tunnels to allowlisted host names on port 443 only. The name is resolved here, on the
 *    host, and no address it resolves to may reach this host or its networks (loopback, private, link-local, CGNAT,
 *    multicast, reserved: see reachesHostNetworks); the tunnel goes to the address checked, so a second lookup
 *    cannot rebind it. Raw IPs and hosts that have a credential route are refused (those can only be reached
 *    through the credential proxy, so a key of the agent's own cannot be used to send data there).
 * 2. A credential proxy per route: plain HTTP from the agent, every auth header it sent stripped, the configured
 *    credential injected, forwarded over TLS to the route's upstream; responses stream back unbuffered (SSE).
 * Every decision is reported through `onDecision` (the caller records it in the ledger).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { reachesHostNetworks } from '../providers/effects/address.ts';

export interface ProxyDecision {
  readonly kind: 'connect' | 'credential' | 'http';
  readonly route?: string;
  readonly host: string;
  readonly port: number;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly address?: string;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
}

export type Lookup = (host: string) => Promise<readonly LookupAddress[]>;
const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

export interface ConnectProxyOptions {
  readonly allowHosts: readonly string[];
  /** Hosts reachable only through a credential route. */
  readonly routedHosts: readonly string[];
  readonly onDecision: (d: ProxyDecision) => void;
  readonly lookup?: Lookup;
  /** Where an allowed tunnel connects (tests point it at a loopback listener; the address check has run). */
  readonly connectTo?: (address: string, port: number) => Socket;
}

/** Parses a CONNECT target `host:port`; IPv6 literals come bracketed. */
function target(authority: string | undefined): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+):([0-9]{1,5})$/.exec(authority ?? '');
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  return { host: m[1].toLowerCase().replace(/\.$/, ''), port: Number(m[2]) };
}

export function connectProxy(options: ConnectProxyOptions): Server {
  const allow = new Set(options.allowHosts.map((h) => h.toLowerCase()));
  const routed = new Set(options.routedHosts.map((h) => h.toLowerCase()));
  const lookup = options.lookup ?? systemLookup;
  const open = options.connectTo ?? ((address, port) => connect({ host: address, port }));
  const server = createServer((req, res) => {
    options.onDecision({ kind: 'http', host: String(req.headers.host ?? ''), port: 80, decision: 'deny', reason: 'plain HTTP through the proxy is refused; only HTTPS CONNECT', method: req.method ?? '' });
    res.writeHead(403, { 'content-type': 'text/plain', connection: 'close' }).end('lattice sandbox: only HTTPS (CONNECT to port 443 of an allowed host) goes through this proxy\n');
  });
  server.on('connect', (req, client: Duplex, head: Buffer) => {
    client.on('error', () => client.destroy());
    const t = target(req.url);
    const refuse = (host: string, port: number, reason: string) => {
      options.onDecision({ kind: 'connect', host, port, decision: 'deny', reason });
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nlattice sandbox: ${reason}\n`);
    };
    if (t === undefined) return refuse(String(req.url).slice(0, 200), 0, 'malformed CONNECT target');
    if (t.port !== 443) return refuse(t.host, t.port, 'only port 443 is allowed');
    if (isIP(t.host.replace(/^\[|\]$/g, '')) !== 0) return refuse(t.host, t.port, 'raw IP addresses are refused; use an allowed host name');
    if (routed.has(t.host)) return refuse(t.host, t.port, 'this host has a credential route; the agent reaches it through the credential proxy only');
    if (!allow.has(t.host)) return refuse(t.host, t.port, 'host is not on the allowlist (add it with --allow-host or the profile\'s allow_hosts)');
    lookup(t.host).then(
      (addresses) => {
        const bad = addresses.find((a) => reachesHostNetworks(a.address));
        const first = addresses[0];
        if (first === undefined) return refuse(t.host, t.port, 'the name resolved to no address');
        if (bad !== undefined) return refuse(t.host, t.port, `the name resolves to a non-public address (${bad.address})`);
        const upstream = open(first.address, t.port);
        let established = false;
        upstream.once('connect', () => {
          established = true;
          options.onDecision({ kind: 'connect', host: t.host, port: t.port, decision: 'allow', reason: 'allowlisted host', address: first.address });
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on('error', (error) => {
          if (established) client.destroy();
          else refuse(t.host, t.port, `cannot connect to ${first.address}: ${error.message}`);
        });
        client.on('close', () => upstream.destroy());
      },
      (error: Error) => refuse(t.host, t.port, `cannot resolve the name: ${error.message}`),
    );
  });
  return server;
}

export interface CredentialRouteOptions {
  readonly route: string;
  readonly upstream: URL;
  readonly header: string;
  readonly value: string;
  readonly onDecision: (d: ProxyDecision) => void;
}

/** Headers that carry credentials or belong to one hop only; none of the agent's reach the upstream. */
const STRIPPED = new Set([
  'authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'x-auth-token', 'cookie',
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host',
]);

function forwardHeaders(headers: IncomingHttpHeaders, inject: { header: string; value: string }, host: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = (headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase());
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || STRIPPED.has(name) || named.includes(name) || name === inject.header) continue;
    out[name] = value;
  }
  out[inject.header] = inject.value;
  out['host'] = host;
  return out;
}

/** A route's proxy; node:https (TLS: ~5 ms of a cold start) is loaded only for a route to an https upstream. */
export async function credentialProxy(options: CredentialRouteOptions): Promise<Server> {
  const { upstream } = options;
  const base = upstream.pathname.replace(/\/$/, '');
  const send = upstream.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const port = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80));
  const header = options.header.toLowerCase();
  return createServer((req, res) => {
    const path = req.url ?? '/';
    const decide = (decision: 'allow' | 'deny', reason: string, status: number) =>
      options.onDecision({ kind: 'credential', route: options.route, host: upstream.hostname, port, decision, reason, method: req.method ?? '', path: path.split('?')[0]?.slice(0, 200) ?? '', status });
    if (!path.startsWith('/')) {
      decide('deny', 'only origin-form request targets (a path) are forwarded', 400);
      return void res.writeHead(400, { 'content-type': 'text/plain' }).end('lattice credential proxy: send requests with a path, not a full URL\n');
    }
    const out = send(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname.replace(/^\[|\]$/g, ''),
        port,
        method: req.method,
        path: `${base}${path}`,
        headers: forwardHeaders(req.headers, { header, value: options.value }, upstream.host),
        servername: isIP(upstream.hostname) === 0 ? upstream.hostname : undefined,
      },
      (answer) => {
        decide('allow', 'credential injected', answer.statusCode ?? 0);
        const headers = { ...answer.headers };
        delete headers['set-cookie'];
        res.writeHead(answer.statusCode ?? 502, headers);
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    out.on('error', (error) => {
      decide('deny', `upstream failed: ${error.message}`, 502);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`lattice credential proxy: the upstream ${upstream.host} failed: ${error.message}\n`);
    });
    req.pipe(out);
  });
}
