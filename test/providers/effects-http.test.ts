/**
 * The http effect executor against a local server on 127.0.0.1: sinks re-checked (host, scheme, port, method,
 * private addresses), connections pinned to the vetted address, secrets injected but never returned or thrown,
 * framing headers and CRLF refused, responses capped, redirects not followed, timeouts reported.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseManifest, type ActionManifest } from '../../core/actions/manifest.ts';
import { sha256Hex } from '../../core/crypto/index.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import type { EffectContext, EffectResult, HttpEffect } from '../../core/pipeline/effects.ts';
import { performHttp, type Address, type Resolver } from '../../providers/effects/http.ts';
import { HostEffects } from '../../providers/effects/index.ts';
import { rejectsWithCode } from '../helpers.ts';

// `$&` would be expanded by a string replacement; the executor must inject it verbatim.
const SECRET = 'sk-live-$&-7c1e9a04b2d8f6';
const BIG = Buffer.from(Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));

interface Seen {
  readonly url: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
}

const seen: Seen[] = [];
let server: Server;
let port: number;
let closedPort: number;

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', method: req.method ?? '', headers: req.headers });
    const auth = req.headers.authorization ?? '';
    switch (req.url ?? '') {
      case '/echo': {
        const body = Buffer.from(`you sent ${auth} and ${SECRET}`);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-request-id': auth, 'x-internal': 'not passed on' });
        res.end(body);
        return;
      }
      case '/big':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < BIG.length; i += 500) res.write(BIG.subarray(i, i + 500));
        res.end();
        return;
      case '/cut-secret':
        res.end(`${'x'.repeat(990)}${SECRET}`);
        return;
      case '/redirect':
        res.writeHead(302, { location: `/echo?${auth}` });
        res.end();
        return;
      case '/hang':
        return; // never answers
      case '/slow-body':
        res.writeHead(200);
        res.write('partial');
        return; // never finishes
      default:
        res.end('ok');
    }
  });
  port = await listen(server);
  const closed = createServer();
  closedPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function manifest(options: { host?: string; allowPrivate?: boolean; ports?: number[] } = {}): ActionManifest {
  const { host = '127.0.0.1', allowPrivate = true, ports = [port, closedPort] } = options;
  return parseManifest(
    `
id = "test.http"
version = "1.0.0"
description = "test"
risk = "low"
[provider]
builtin = "http.request"
[request.schema]
type = "object"
[[sinks.http]]
host = "${host}"
scheme = "http"
ports = [${ports.join(', ')}]
methods = ["GET", "POST"]
allow_private = ${allowPrivate}
[[secrets]]
name = "api"
header = "Authorization"
format = "Bearer {secret}"
secret = "API_TOKEN"
[[secrets]]
name = "key"
header = "x-key"
format = "{secret}"
secret = "KEY_TOKEN"
`,
    'test',
  );
}

function context(m: ActionManifest, options: { signal?: AbortSignal; key?: string } = {}): EffectContext {
  const store: Record<string, string> = { API_TOKEN: SECRET, KEY_TOKEN: options.key ?? 'plain-key-value' };
  return {
    manifest: m,
    secret: (name) => {
      const value = store[name];
      if (value === undefined) throw new LatticeError('SECRET_NOT_FOUND', `no secret ${name}`);
      return value;
    },
    signal: options.signal ?? AbortSignal.timeout(5000),
  };
}

function effect(path: string, extra: Partial<HttpEffect> = {}): HttpEffect {
  return { kind: 'http', method: 'GET', url: `http://127.0.0.1:${port}${path}`, headers: {}, body: null, secrets: [], ...extra };
}

type HttpResult = Extract<EffectResult, { kind: 'http' }>;

async function perform(e: HttpEffect, ctx: EffectContext, host = new HostEffects()): Promise<HttpResult> {
  const result = await host.perform(e, ctx);
  assert.equal(result.kind, 'http');
  return result;
}

/** The LatticeError a promise rejects with (a literal code), whose every printable part is free of the secret. */
async function rejected(promise: Promise<unknown>, code: string, message?: RegExp): Promise<LatticeError> {
  const error = await rejectsWithCode(promise, code, message);
  assertNoSecret(error);
  return error;
}

/** Everything an error could print (message, stack, every cause) is free of the secret. */
function assertNoSecret(error: unknown): void {
  for (let e: unknown = error; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
    const text = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : describeError(e);
    assert.ok(!text.includes(SECRET), `the secret leaked into an error: ${text}`);
  }
}

const requestsTo = (path: string) => seen.filter((s) => s.url === path).length;

describe('http effects: secrets', () => {
  it('injects the secret, overriding a same-named effect header, and redacts it from body and headers', async () => {
    const result = await perform(effect('/echo', { headers: { authorization: 'Bearer forged' }, secrets: ['api'] }), context(manifest()));
    assert.equal(seen.at(-1)?.headers.authorization, `Bearer ${SECRET}`);
    assert.equal(result.status, 200);
    assert.equal(result.body, 'you sent [REDACTED] and [REDACTED]');
    assert.deepEqual(result.headers, { 'content-type': 'text/plain', 'x-request-id': '[REDACTED]', 'content-length': String(result.bytes) });
    const sent = Buffer.from(`you sent Bearer ${SECRET} and ${SECRET}`);
    assert.equal(result.bytes, sent.length);
    assert.equal(result.sha256, sha256Hex(sent));
  });

  it('redacts a secret that the response limit cut in half', async () => {
    const result = await perform(effect('/cut-secret', { secrets: ['api'] }), context(manifest()), new HostEffects({ maxResponseBytes: 1000 }));
    assert.equal(result.truncated, true);
    assert.ok(!result.body.includes(SECRET.slice(0, 10)), result.body);
    assert.equal(result.body, `${'x'.repeat(990)}[REDACTED]`);
  });

  it('keeps the secret out of the message of a failed connection', async () => {
    const e = effect('/', { url: `http://127.0.0.1:${closedPort}/`, secrets: ['api'] });
    await rejected(perform(e, context(manifest())), 'EFFECT_FAILED', /127\.0\.0\.1.*ECONNREFUSED/);
  });

  it('refuses a secret containing CR or LF and sends nothing; a clean one is sent', async () => {
    const before = requestsTo('/crlf');
    const bad = context(manifest(), { key: 'abc\r\nx-injected: 1' });
    const error = await rejected(perform(effect('/crlf', { secrets: ['key'] }), bad), 'EFFECT_FAILED', /secret key contains CR, LF or NUL/);
    assert.ok(!error.message.includes('abc'));
    assert.equal(requestsTo('/crlf'), before);
    await perform(effect('/crlf', { secrets: ['key'] }), context(manifest()));
    assert.equal(seen.at(-1)?.headers['x-key'], 'plain-key-value');
  });

  it('refuses a secret the manifest does not declare and passes on a missing store entry', async () => {
    await rejected(perform(effect('/', { secrets: ['other'] }), context(manifest())), 'SINK_DENIED', /secret other is not declared/);
    const m = manifest();
    const missing: EffectContext = { ...context(m), secret: (name) => { throw new LatticeError('SECRET_NOT_FOUND', `no secret ${name}`); } };
    await rejected(perform(effect('/', { secrets: ['api'] }), missing), 'SECRET_NOT_FOUND');
  });
});

describe('http effects: request shape', () => {
  it('refuses hop-by-hop and framing headers, and sends an ordinary one', async () => {
    for (const name of ['host', 'Content-Length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-authorization']) {
      await rejected(perform(effect('/', { headers: { [name]: 'x' } }), context(manifest())), 'SINK_DENIED', /is set by the host/);
    }
    await perform(effect('/headers', { headers: { 'x-custom': 'yes' } }), context(manifest()));
    assert.equal(seen.at(-1)?.headers['x-custom'], 'yes');
  });

  it('refuses request-crlf: a header value with a line break', async () => {
    await rejected(perform(effect('/', { headers: { 'x-custom': 'a\r\nhost: evil' } }), context(manifest())), 'SINK_DENIED', /CR, LF or NUL/);
  });

  it('refuses credentials in the URL', async () => {
    await rejected(perform(effect('/', { url: `http://user:pw@127.0.0.1:${port}/` }), context(manifest())), 'SINK_DENIED', /credentials/);
  });

  it('does not follow a redirect: the 3xx is the result', async () => {
    const before = requestsTo('/echo');
    const result = await perform(effect('/redirect', { secrets: ['api'] }), context(manifest()));
    assert.equal(result.status, 302);
    assert.equal(result.headers['location'], '/echo?[REDACTED]');
    assert.equal(requestsTo('/echo'), before);
  });
});

describe('http effects: sinks', () => {
  it('refuses a host that is not in the sinks; the listed one is allowed', async () => {
    await rejected(perform(effect('/', { url: `http://127.0.0.2:${port}/` }), context(manifest())), 'SINK_DENIED', /127\.0\.0\.2.*matches no \[\[sinks\.http\]\]/);
    assert.equal((await perform(effect('/'), context(manifest()))).body, 'ok');
  });

  it('refuses the wrong method, port or scheme; the matching one is allowed', async () => {
    const m = manifest({ ports: [port] });
    await rejected(perform(effect('/', { method: 'DELETE' }), context(m)), 'SINK_DENIED');
    await rejected(perform(effect('/', { url: `http://127.0.0.1:${closedPort}/` }), context(m)), 'SINK_DENIED');
    await rejected(perform(effect('/', { url: `https://127.0.0.1:${port}/` }), context(m)), 'SINK_DENIED');
    await rejected(perform(effect('/', { url: `ftp://127.0.0.1:${port}/` }), context(m)), 'SINK_DENIED');
    assert.equal((await perform(effect('/', { method: 'POST', body: 'hello' }), context(m))).status, 200);
    assert.equal(seen.at(-1)?.method, 'POST');
  });

  it('url-dot-segment: refuses at the host a URL the parser would rewrite, sending nothing; one written as sent is sent', async () => {
    const before = seen.length;
    for (const path of ['/public/../echo', '/public/%2e%2e/echo', '/./echo', '/public\\..\\echo']) {
      await rejected(perform(effect(path, { secrets: ['api'] }), context(manifest())), 'SINK_DENIED', /\. or \.\. segment|backslash/);
    }
    assert.equal(seen.length, before, 'nothing reached the server');
    await perform(effect('/public/...'), context(manifest()));
    assert.equal(seen.at(-1)?.url, '/public/...');
  });

  it('template-encoded-slash: refuses at the host a template URL whose path carries %2F; in the query it is sent', async () => {
    const template = parseManifest(
      `id = "test.template"\nversion = "1.0.0"\ndescription = "test"\nrisk = "low"\n[provider]\nbuiltin = "http.template"\n[request.schema]\ntype = "object"\n` +
        `[[sinks.http]]\nhost = "127.0.0.1"\nscheme = "http"\nports = [${port}]\nmethods = ["GET"]\nallow_private = true\n[template]\nmethod = "GET"\nurl = "http://127.0.0.1:${port}/items/{params.id}"\n`,
      'test',
    );
    const before = seen.length;
    await rejected(perform(effect('/items/a%2F..%2Fadmin'), context(template)), 'SINK_DENIED', /encoded slash/);
    assert.equal(seen.length, before, 'nothing reached the server');
    await perform(effect('/items/a?next=b%2Fc'), context(template));
    assert.equal(seen.at(-1)?.url, '/items/a?next=b%2Fc');
  });

  it('refuses localhost when private addresses are not allowed, and allows it when they are', async () => {
    const url = `http://localhost:${port}/`;
    await rejected(perform(effect('/', { url }), context(manifest({ host: 'localhost', allowPrivate: false }))), 'SINK_DENIED', /localhost resolves to 127\.0\.0\.1/);
    await rejected(perform(effect('/', { url: `http://127.0.0.1:${port}/` }), context(manifest({ allowPrivate: false }))), 'SINK_DENIED', /not a public address/);
    assert.equal((await perform(effect('/', { url }), context(manifest({ host: 'localhost', allowPrivate: true })))).body, 'ok');
  });

  it('matches *.suffix sinks against subdomains, not the apex and not IP addresses', async () => {
    const resolve: Resolver = () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
    const m = manifest({ host: '*.lattice.test' });
    const run = (host: string) => performHttp(effect('/', { url: `http://${host}:${port}/` }), context(m), { maxResponseBytes: 1000, resolve });
    await rejected(run('lattice.test'), 'SINK_DENIED');
    await rejected(run('evil-lattice.test'), 'SINK_DENIED');
    await rejected(performHttp(effect('/'), context(manifest({ host: '*.0.0.1' })), { maxResponseBytes: 1000, resolve }), 'SINK_DENIED');
    assert.equal(((await run('API.Lattice.test')) as HttpResult).body, 'ok');
  });

  it('refuses a name when any of its addresses is private, whichever comes first', async () => {
    const m = manifest({ host: 'api.lattice.test', allowPrivate: false });
    for (const addresses of [['93.184.215.14', '127.0.0.1'], ['127.0.0.1', '93.184.215.14']]) {
      const resolve: Resolver = () => Promise.resolve(addresses.map((address) => ({ address, family: 4 })));
      const e = effect('/', { url: `http://api.lattice.test:${port}/` });
      await rejected(performHttp(e, context(m), { maxResponseBytes: 1000, resolve }), 'SINK_DENIED', /resolves to 127\.0\.0\.1/);
    }
  });

  it('connects to the vetted address even when DNS answers differently afterwards (rebinding)', async () => {
    const answers: Address[][] = [[{ address: '127.0.0.1', family: 4 }], [{ address: '10.0.0.1', family: 4 }]];
    let calls = 0;
    const resolve: Resolver = () => Promise.resolve(answers[Math.min(calls++, 1)] ?? []);
    const e = effect('/rebind', { url: `http://rebind.lattice.test:${port}/rebind` });
    const result = await performHttp(e, context(manifest({ host: 'rebind.lattice.test' })), { maxResponseBytes: 1000, resolve });
    assert.equal((result as HttpResult).body, 'ok');
    assert.equal(calls, 1);
    assert.equal(seen.at(-1)?.headers.host, `rebind.lattice.test:${port}`);
  });
});

describe('http effects: responses and time', () => {
  it('reads at most maxResponseBytes, hashing exactly the bytes received; a body within the limit is whole', async () => {
    const cut = await perform(effect('/big'), context(manifest()), new HostEffects({ maxResponseBytes: 1000 }));
    assert.deepEqual([cut.truncated, cut.bytes, cut.sha256, cut.body], [true, 1000, sha256Hex(BIG.subarray(0, 1000)), BIG.subarray(0, 1000).toString()]);
    const whole = await perform(effect('/big'), context(manifest()), new HostEffects({ maxResponseBytes: BIG.length }));
    assert.deepEqual([whole.truncated, whole.bytes, whole.sha256], [false, BIG.length, sha256Hex(BIG)]);
  });

  it('reports a timeout before the headers or during the body as EFFECT_FAILED; a quick answer is fine', async () => {
    await rejected(perform(effect('/hang', { secrets: ['api'] }), context(manifest(), { signal: AbortSignal.timeout(200) })), 'EFFECT_FAILED', /127\.0\.0\.1 timed out/);
    await rejected(perform(effect('/slow-body'), context(manifest(), { signal: AbortSignal.timeout(200) })), 'EFFECT_FAILED', /timed out/);
    assert.equal((await perform(effect('/'), context(manifest(), { signal: AbortSignal.timeout(2000) }))).body, 'ok');
  });

  it('does not start an effect whose signal has already fired', async () => {
    const before = seen.length;
    await rejected(perform(effect('/'), context(manifest(), { signal: AbortSignal.abort() })), 'EFFECT_FAILED', /timed out/);
    assert.equal(seen.length, before);
  });
});
