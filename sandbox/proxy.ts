/**
 * The sandbox's two network exits, served by `lattice sandbox` outside the sandbox on unix sockets that the helper
 * relays to loopback ports inside. Both use node:http's parser; neither parses HTTP by hand.
 *
 * 1. The CONNECT proxy: HTTPS tunnels to allowlisted host names on port 443 only. The name is resolved here, on the
 *    host, and no address it resolves to may reach this host or its networks (loopback, private, link-local, CGNAT,
 *    multicast, reserved: see reachesHostNetworks); the tunnel goes to the address checked, so a second lookup
 *    cannot rebind it. Raw IPs and hosts that have a credential route are refused (those can only be reached
 *    through the credential proxy, so a key of the agent's own cannot be used to send data there). Nothing goes
 *    upstream before the tunnel's TLS ClientHello is read (client-hello.ts) and names exactly the CONNECT host: a
 *    different server name (domain fronting through an allowlisted CDN), none, or no TLS at all closes the tunnel.
 * 2. A credential proxy per route: plain HTTP from the agent, every auth header it sent stripped, the configured
 *    credential injected, forwarded over TLS to the route's upstream; responses stream back unbuffered (SSE), with
 *    the key overwritten wherever the upstream echoes it (redact.ts). The path is normalised below the route's base
 *    path (route-path.ts); TRACE and TRACK (which echo the request, key included) are refused; a protocol upgrade
 *    is refused unless the route allows one, and then only to WebSocket.
 * Every decision is reported through `onDecision` (the caller records it in the ledger).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { reachesHostNetworks } from '../providers/effects/address.ts';
import { awaitClientHello, type HelloOutcome } from './client-hello.ts';
import { type Redactor, redactor } from './redact.ts';
import { routePath } from './route-path.ts';

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
  /** How long a tunnel may wait for the client's TLS ClientHello (default HELLO_TIMEOUT_MS). */
  readonly helloTimeoutMs?: number;
}

export const HELLO_TIMEOUT_MS = 10_000;
/** A TLS fatal alert, access_denied (RFC 8446 §6): what a client that spoke TLS gets when its tunnel is refused. */
const TLS_ACCESS_DENIED = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);

/**
 * The tunnel's server name rule. CONNECT targets are host names only (IP literals are refused before this), so the
 * ClientHello must name exactly that host; one without a name is refused, as TLS (RFC 6066) puts none for an IP.
 */
function serverNameRefusal(host: string, serverName: string | null): string | undefined {
  if (serverName === null) return `the TLS ClientHello names no server (SNI); a tunnel to ${host} must name ${host}`;
  if (serverName !== host) return `the TLS server name ${serverName} is not the CONNECT host ${host} (domain fronting is refused)`;
  return undefined;
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
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          void awaitClientHello(client, head, options.helloTimeoutMs ?? HELLO_TIMEOUT_MS).then((hello: HelloOutcome) => {
            const decide = (decision: 'allow' | 'deny', reason: string) => options.onDecision({ kind: 'connect', host: t.host, port: t.port, decision, reason, address: first.address });
            if (!hello.ok) {
              decide('deny', hello.reason);
              upstream.destroy();
              return void client.destroy();
            }
            const refusal = serverNameRefusal(t.host, hello.serverName);
            if (refusal !== undefined) {
              decide('deny', refusal);
              upstream.destroy();
              return void client.end(TLS_ACCESS_DENIED);
            }
            decide('allow', 'allowlisted host; the TLS server name matches');
            upstream.write(hello.bytes);
            upstream.pipe(client);
            client.pipe(upstream);
            client.resume();
          });
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
  /** The header's value, as injected. */
  readonly value: string;
  /** The key inside it: overwritten too wherever an answer carries it. */
  readonly key?: string;
  /** Whether the agent may upgrade a request to another protocol (WebSocket) through this route; off by default. */
  readonly allowUpgrade?: boolean;
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

/** Methods whose answer is the request itself, the injected key with it. */
const ECHOING = new Set(['TRACE', 'TRACK']);

/** The body as the agent may read it: decoded when the upstream compressed it anyway, so the key can be found in it. */
function decoded(answer: IncomingMessage): Readable | string {
  const encoding = String(answer.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return answer;
  const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
  if (decoder === undefined) return `the upstream answered in the encoding '${encoding}', which lattice cannot read to keep the key out of it`;
  return answer.pipe(decoder).on('error', () => answer.destroy());
}

/** A response head written by hand, for an upgrade request's socket (node:http has no response object there). */
function responseHead(answer: IncomingMessage, extra: readonly string[], redact: Redactor): string {
  const drop = new Set(['set-cookie', ...(answer.statusCode === 101 ? [] : ['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding'])]);
  const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
  for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
    const [name, value] = [answer.rawHeaders[i] ?? '', answer.rawHeaders[i + 1] ?? ''];
    if (!drop.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
  }
  return redact.text(`${[...lines, ...extra].join('\r\n')}\r\n\r\n`);
}

/** A route's proxy; node:https (TLS: ~5 ms of a cold start) is loaded only for a route to an https upstream. */
export async function credentialProxy(options: CredentialRouteOptions): Promise<Server> {
  const { upstream } = options;
  const base = upstream.pathname.replace(/\/$/, '');
  const send = upstream.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const port = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80));
  const header = options.header.toLowerCase();
  const upgradeRefusal = `route '${options.route}' does not allow protocol upgrades (WebSocket); set allow_upgrade = true on the route if the agent needs them`;
  const redact = redactor([options.value, options.key ?? '']);

  /**
   * Checks one request and starts it upstream; on a refusal answers it (through `refuse`), records why and returns
   * undefined. Only an upgrade request (`upgrading`) carries its Upgrade header on; elsewhere it is stripped.
   */
  const admit = (req: IncomingMessage, upgrading: boolean, refuse: (status: number, text: string) => void) => {
    const target = req.url ?? '/';
    const decide = (decision: 'allow' | 'deny', reason: string, status: number, path = target.split('?')[0] ?? '') =>
      options.onDecision({ kind: 'credential', route: options.route, host: upstream.hostname, port, decision, reason, method: req.method ?? '', path: path.slice(0, 200), status });
    const path = routePath(base, target);
    if (!path.ok) {
      decide('deny', path.reason, 400);
      refuse(400, `lattice credential proxy: ${path.reason}\n`);
      return undefined;
    }
    const method = (req.method ?? '').toUpperCase();
    if (ECHOING.has(method)) {
      const reason = `${method} is refused: its answer echoes the request, and with it the injected key`;
      decide('deny', reason, 405);
      refuse(405, `lattice credential proxy: ${reason}\n`);
      return undefined;
    }
    if (req.headers.upgrade !== undefined && options.allowUpgrade !== true) {
      decide('deny', upgradeRefusal, 403);
      refuse(403, `lattice credential proxy: ${upgradeRefusal}\n`);
      return undefined;
    }
    if (req.headers.upgrade !== undefined && req.headers.upgrade.trim().toLowerCase() !== 'websocket') {
      const reason = `an upgrade to '${req.headers.upgrade.slice(0, 40)}' is refused; a route's upgrades are to WebSocket only`;
      decide('deny', reason, 403);
      refuse(403, `lattice credential proxy: ${reason}\n`);
      return undefined;
    }
    const headers = forwardHeaders(req.headers, { header, value: options.value }, upstream.host);
    // An unencoded answer, so the key can be found in it; no WebSocket compression, for the same reason.
    headers['accept-encoding'] = 'identity';
    delete headers['sec-websocket-extensions'];
    const out = send({
      protocol: upstream.protocol,
      hostname: upstream.hostname.replace(/^\[|\]$/g, ''),
      port,
      method: req.method,
      path: path.forward,
      headers: {
        ...headers,
        ...(upgrading && req.headers.upgrade !== undefined ? { connection: 'Upgrade', upgrade: req.headers.upgrade } : {}),
      },
      servername: isIP(upstream.hostname) === 0 ? upstream.hostname : undefined,
    });
    return { out, decide: (decision: 'allow' | 'deny', reason: string, status: number) => decide(decision, reason, status, path.path) };
  };

  const server = createServer((req, res) => {
    const admitted = admit(req, false, (status, text) => res.writeHead(status, { 'content-type': 'text/plain' }).end(text));
    if (admitted === undefined) return void req.resume();
    const { out, decide } = admitted;
    out.on('response', (answer) => {
      const body = decoded(answer);
      if (typeof body === 'string') {
        answer.destroy();
        decide('deny', body, 502);
        return void res.writeHead(502, { 'content-type': 'text/plain' }).end(`lattice credential proxy: ${body}\n`);
      }
      decide('allow', 'credential injected', answer.statusCode ?? 0);
      const headers: Record<string, string | string[]> = {};
      // The upstream's cookies stay out; its hop-by-hop headers are its connection's, not the agent's; a body
      // decoded here has neither its encoding nor its length.
      const drop = ['set-cookie', 'connection', 'keep-alive', ...(body === answer ? [] : ['content-encoding', 'content-length'])];
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !drop.includes(name)) headers[name] = Array.isArray(value) ? value.map((v) => redact.text(v)) : redact.text(value);
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      res.flushHeaders();
      body.pipe(redact.stream()).pipe(res);
    });
    out.on('error', (error) => {
      decide('deny', `upstream failed: ${error.message}`, 502);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`lattice credential proxy: the upstream ${upstream.host} failed: ${error.message}\n`);
    });
    req.pipe(out);
  });

  // An upgrade request (Connection: upgrade) comes here, not to the request handler: refused unless the route
  // allows upgrades; if it does, the upstream's 101 and then both byte streams are relayed as they are.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const admitted = admit(req, true, (status, text) => socket.end(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Forbidden'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${text}`));
    if (admitted === undefined) return;
    const { out, decide } = admitted;
    out.on('upgrade', (answer: IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer) => {
      decide('allow', 'credential injected; protocol upgraded', 101);
      upstreamSocket.on('error', () => socket.destroy()).on('close', () => socket.destroy());
      socket.on('close', () => upstreamSocket.destroy());
      socket.write(responseHead(answer, [], redact));
      const fromUpstream = redact.stream();
      fromUpstream.pipe(socket);
      if (upstreamHead.length > 0) fromUpstream.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(fromUpstream);
      socket.pipe(upstreamSocket);
    });
    out.on('response', (answer) => {
      const body = decoded(answer);
      if (typeof body === 'string') {
        answer.destroy();
        decide('deny', body, 502);
        return void socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nlattice credential proxy: ${body}\n`);
      }
      decide('allow', 'credential injected; the upstream declined the upgrade', answer.statusCode ?? 0);
      // Sent until the upstream closes (connection: close), without length or encoding: the body is decoded here.
      socket.write(responseHead(answer, ['connection: close'], redact));
      body.pipe(redact.stream()).pipe(socket);
    });
    out.on('error', (error) => {
      decide('deny', `upstream failed: ${error.message}`, 502);
      socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nlattice credential proxy: the upstream ${upstream.host} failed: ${error.message}\n`);
    });
    out.end();
  });
  return server;
}
