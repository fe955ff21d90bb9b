/**
 * The two proxies against attacks on what they forward: a tunnel whose TLS server name is not its CONNECT host (or is
 * missing, or is no TLS at all, or never comes), and credential-route requests that leave the route's base path or
 * upgrade the connection. Each refusal is shown beside the legitimate case it must keep allowing. Every upstream is a
 * loopback listener of the test's own; the resolver is the test's, so no name is looked up.
 */
import assert from 'node:assert/strict';
import { request, createServer as httpServer, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { connectProxy, credentialProxy, type ProxyDecision } from '../../sandbox/proxy.ts';
import { clientHello, records } from './tls-records.ts';

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  sockets.forEach((s) => s.destroy());
  servers.forEach((s) => (s.close(), 'closeAllConnections' in s && (s as { closeAllConnections(): void }).closeAllConnections()));
});
const port = (s: Server) => (s.address() as AddressInfo).port;
async function listening<T extends Server>(server: T): Promise<T> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
/** `promise`, or a failure naming `what` after `ms` (a proxy that lets a tunnel through leaves the client waiting). */
const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms).unref())]);
const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
};

describe('CONNECT proxy: the tunnel\'s TLS server name', () => {
  /** A proxy for api.example.com (resolving to a public address) whose tunnels reach a recording loopback listener. */
  async function setup(helloTimeoutMs = 5000) {
    const received: Buffer[] = [];
    const target = await listening(createServer((c) => (c.on('data', (d: Buffer) => received.push(d)), c.on('error', () => undefined))));
    const decisions: ProxyDecision[] = [];
    const proxy = await listening(connectProxy({
      allowHosts: ['api.example.com'], routedHosts: [], onDecision: (d) => decisions.push(d), helloTimeoutMs,
      lookup: () => Promise.resolve([{ address: '93.184.216.34', family: 4 }]),
      connectTo: () => connect({ host: '127.0.0.1', port: port(target) }),
    }));
    /** Opens a tunnel to api.example.com:443 and hands back the raw socket once the proxy answered 200. */
    const tunnel = () => new Promise<Socket>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: port(proxy), method: 'CONNECT', path: 'api.example.com:443' });
      req.on('connect', (res, socket) => (sockets.push(socket), res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT answered ${res.statusCode}`))));
      req.on('error', reject);
      req.end();
    });
    const closed = (socket: Socket) => new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d)).on('error', () => undefined).on('close', () => resolve(Buffer.concat(got)));
    });
    return { received: () => Buffer.concat(received), decisions, tunnel, closed };
  }

  it('sni-mismatch: a real TLS client naming another server through a tunnel to api.example.com is cut off, nothing goes upstream', async () => {
    const { received, decisions, tunnel } = await setup();
    const socket = await tunnel();
    const tls = tlsConnect({ socket, servername: 'fronted.evil.example', rejectUnauthorized: false });
    const error = await within(new Promise<Error>((resolve) => tls.on('error', resolve)), 3000, 'TLS failure');
    assert.match(error.message, /access denied|ECONNRESET|socket disconnected/i);
    await until(() => decisions.length > 0, 'the decision');
    assert.deepEqual([decisions[0]?.decision, decisions[0]?.host], ['deny', 'api.example.com']);
    assert.match(decisions[0]?.reason ?? '', /TLS server name fronted\.evil\.example is not the CONNECT host api\.example\.com/);
    assert.equal(received().length, 0, 'bytes reached the upstream');
  });

  it('sni-missing: a ClientHello that names no server is refused for a host-name tunnel', async () => {
    const { received, decisions, tunnel, closed } = await setup();
    const socket = await tunnel();
    socket.write(records(clientHello({})));
    const answer = await within(closed(socket), 3000, 'close of the tunnel');
    assert.deepEqual([...answer], [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31], 'a TLS access_denied alert');
    assert.equal(decisions[0]?.decision, 'deny');
    assert.match(decisions[0]?.reason ?? '', /names no server \(SNI\)/);
    assert.equal(received().length, 0);
  });

  it('esni-legacy: a hello naming the CONNECT host but carrying an encrypted server name (ESNI, 0xffce) is refused', async () => {
    const { received, decisions, tunnel, closed } = await setup();
    const socket = await tunnel();
    socket.write(records(clientHello({ names: ['api.example.com'], extensions: [[0xffce, Buffer.alloc(40, 1)]] })));
    await within(closed(socket), 3000, 'close of the tunnel');
    assert.equal(decisions[0]?.decision, 'deny');
    assert.match(decisions[0]?.reason ?? '', /encrypted server name \(ESNI\)/);
    assert.equal(received().length, 0, 'bytes reached the upstream');
    const plain = await tunnel();
    plain.write(records(clientHello({ names: ['api.example.com'] })));
    await until(() => received().length > 0, 'the hello upstream');
    assert.equal(decisions[1]?.decision, 'allow');
  });

  it('the matching name goes through: a real TLS client\'s hello reaches the upstream byte for byte, and the allow is recorded', async () => {
    const { received, decisions, tunnel } = await setup();
    const socket = await tunnel();
    const tls = tlsConnect({ socket, servername: 'API.example.com', rejectUnauthorized: false });
    tls.on('error', () => undefined); // the test's listener speaks no TLS; only what reached it matters
    await until(() => received().length > 0, 'the upstream to receive the hello');
    assert.equal(received()[0], 0x16);
    assert.deepEqual([decisions[0]?.decision, decisions[0]?.reason, decisions[0]?.address], ['allow', 'allowlisted host; the TLS server name matches', '93.184.216.34']);
    tls.destroy();
  });

  it('a hello split into one-byte TCP segments and across three records is read whole and forwarded unchanged', async () => {
    const { received, decisions, tunnel } = await setup();
    const socket = await tunnel();
    const hello = records(clientHello({ names: ['api.example.com'], padding: 40_000 }));
    for (let i = 0; i < 300; i++) {
      socket.write(hello.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
    }
    socket.write(hello.subarray(300));
    await until(() => received().length === hello.length, 'the whole hello upstream');
    assert.ok(received().equals(hello));
    assert.equal(decisions[0]?.decision, 'allow');
    socket.destroy();
  });

  it('a tunnel that does not speak TLS, or says nothing until the timeout, is closed and recorded; the proxy keeps serving', async () => {
    const { received, decisions, tunnel, closed } = await setup(300);
    const plain = await tunnel();
    plain.write('GET / HTTP/1.1\r\nhost: api.example.com\r\n\r\n');
    await within(closed(plain), 3000, 'close of the plain tunnel');
    const silent = await tunnel();
    const started = Date.now();
    await within(closed(silent), 3000, 'close of the silent tunnel');
    assert.ok(Date.now() - started >= 250, 'closed by the timeout');
    assert.match(decisions[0]?.reason ?? '', /did not start with a TLS ClientHello: not TLS \(first byte 0x47\)/);
    assert.match(decisions[1]?.reason ?? '', /no TLS ClientHello within 0\.3 s/);
    assert.equal(received().length, 0);
    const good = await tunnel();
    good.write(records(clientHello({ names: ['api.example.com'] })));
    await until(() => received().length > 0, 'a later good tunnel');
    assert.equal(decisions[2]?.decision, 'allow');
    good.destroy();
  });
});

describe('credential proxy: the route\'s base path and protocol upgrades', () => {
  /** An upstream recording what reaches it (WebSocket-like upgrades answered 101 and echoed), and a route to its /v1/base. */
  async function setup(allowUpgrade?: boolean) {
    const seen: { url: string; key: string | undefined; upgrade: string | undefined }[] = [];
    const upstream = await listening(httpServer((req, res) => {
      seen.push({ url: req.url ?? '', key: req.headers['x-api-key'] as string | undefined, upgrade: req.headers.upgrade });
      res.end('ok');
    }));
    upstream.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      seen.push({ url: req.url ?? '', key: req.headers['x-api-key'] as string | undefined, upgrade: req.headers.upgrade });
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d]))).on('end', () => socket.end());
    });
    const decisions: ProxyDecision[] = [];
    const proxy = await listening(await credentialProxy({
      route: 't', upstream: new URL(`http://127.0.0.1:${port(upstream)}/v1/base`), header: 'x-api-key', value: 'sk-real', onDecision: (d) => decisions.push(d),
      ...(allowUpgrade === undefined ? {} : { allowUpgrade }),
    }));
    /** Sends `raw` (a whole request) and returns what came back until `until` matches or the proxy closes. */
    const send = (raw: string, then?: { match: RegExp; write: string }) => new Promise<string>((resolve) => {
      let got = '';
      const s = connect(port(proxy), '127.0.0.1', () => s.write(raw));
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (then !== undefined && then.match.test(got) && !got.includes('echo:')) s.write(then.write);
        if (got.includes('echo:')) s.destroy();
      });
      s.on('error', () => undefined).on('close', () => resolve(got));
      setTimeout(() => s.destroy(), 3000);
    });
    const get = (path: string) => send(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    return { seen, decisions, send, get };
  }

  it('credential-proxy-dotdot: paths that climb above the base, literally or percent-encoded, are refused and never sent', async () => {
    const { seen, decisions, get } = await setup();
    for (const path of ['/../../x', '/a/../../x', '/%2e%2e/x', '/.%2E/x', '/%2E%2e/%2e%2e/v2/secret', '/..%2fx', '/a%2f..%2f..%2fx', '/..%5cx', '/%252e%252e/x', '/..;/x', '/a\\..\\..\\x']) {
      const answer = await get(path);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${path} was not refused: ${answer.slice(0, 80)}`);
    }
    assert.deepEqual(seen, [], 'a refused path reached the upstream');
    assert.ok(decisions.every((d) => d.decision === 'deny' && d.status === 400));
    assert.match(decisions[0]?.reason ?? '', /climbs above the route's base path/);
    assert.match(decisions[5]?.reason ?? '', /percent-encoded \/, \\ or NUL/);
    assert.match(decisions[8]?.reason ?? '', /double percent-encoding/);
  });

  it('paths that stay below the base are normalised and forwarded with the key; the query is kept as sent', async () => {
    const { seen, get } = await setup();
    for (const path of ['/messages?x=1&y=%2F..', '/a/../messages', '/a/./b/%2e%2e/c', '/a/..', '/models/claude%20x']) assert.match(await get(path), /^HTTP\/1\.1 200 /, path);
    assert.deepEqual(seen.map((s) => s.url), ['/v1/base/messages?x=1&y=%2F..', '/v1/base/messages', '/v1/base/a/c', '/v1/base/', '/v1/base/models/claude%20x']);
    assert.ok(seen.every((s) => s.key === 'sk-real'));
  });

  it('credential-proxy-upgrade: an Upgrade request is refused (403) on a route that does not allow it, with or without Connection: upgrade', async () => {
    const { seen, decisions, send } = await setup();
    const upgrade = await send('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(upgrade, /^HTTP\/1\.1 403 [\s\S]*does not allow protocol upgrades/);
    const bare = await send('GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: close\r\n\r\n');
    assert.match(bare, /^HTTP\/1\.1 403 /);
    assert.deepEqual(seen, []);
    assert.deepEqual(decisions.map((d) => [d.decision, d.status]), [['deny', 403], ['deny', 403]]);
  });

  it('a route with allow_upgrade relays the upgrade: key injected, path normalised, 101 and both byte streams passed on', async () => {
    const { seen, decisions, send } = await setup(true);
    const answer = await send('GET /a/../ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nx-api-key: agent-own\r\n\r\n', { match: /101 Switching Protocols[\s\S]*\r\n\r\n/, write: 'ping' });
    assert.match(answer, /^HTTP\/1\.1 101 [\s\S]*\r\n\r\necho:ping/);
    assert.deepEqual(seen, [{ url: '/v1/base/ws', key: 'sk-real', upgrade: 'websocket' }]);
    assert.deepEqual([decisions[0]?.decision, decisions[0]?.status, decisions[0]?.path], ['allow', 101, '/ws']);
    const dotdot = await send('GET /../ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
    assert.match(dotdot, /^HTTP\/1\.1 400 /, 'an allowed upgrade still may not leave the base path');
    assert.equal(seen.length, 1);
  });

  it('credential-upgrade-h2c: a route that allows upgrades allows WebSocket only; the upstream\'s echo of the key is overwritten', async () => {
    const { seen, decisions, send } = await setup(true);
    const h2c = await send('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n\r\n');
    assert.match(h2c, /^HTTP\/1\.1 403 [\s\S]*WebSocket only/);
    assert.deepEqual(seen, []);
    assert.equal(decisions[0]?.decision, 'deny');
    const ws = await send('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n', { match: /101 Switching Protocols[\s\S]*\r\n\r\n/, write: 'key? sk-real' });
    assert.match(ws, /\r\n\r\necho:key\? \*{7}$/);
  });

  it('credential-trace: TRACE is refused (405) and never sent upstream', async () => {
    const { seen, decisions, send } = await setup();
    assert.match(await send('TRACE /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 405 [\s\S]*TRACE is refused/);
    assert.deepEqual(seen, []);
    assert.deepEqual([decisions[0]?.decision, decisions[0]?.status], ['deny', 405]);
  });
});
