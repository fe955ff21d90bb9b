/**
 * The ClientHello reader the CONNECT proxy checks tunnels with: real clients' hellos, hellos split into records and
 * segments, and every malformed shape it must refuse rather than pass; fast-check properties for arbitrary bytes.
 */
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_HELLO, readClientHello } from '../../sandbox/client-hello.ts';
import { clientHello, records } from './tls-records.ts';

const ok = (serverName: string | null) => ({ state: 'ok', serverName });
const reason = (bytes: Buffer) => {
  const r = readClientHello(bytes);
  return r.state === 'invalid' ? r.reason : `not invalid: ${r.state}`;
};

/** The first bytes node:tls sends for `servername` (a real OpenSSL ClientHello), caught by a loopback listener. */
async function nodeHello(servername: string | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const server = createServer((s: Socket) => s.on('data', (d: Buffer) => chunks.push(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: servername ?? '', rejectUnauthorized: false });
  client.on('error', () => undefined); // the listener never answers: the handshake is abandoned below
  for (let i = 0; i < 100 && readClientHello(Buffer.concat(chunks)).state === 'incomplete'; i++) await new Promise((r) => setTimeout(r, 10));
  client.destroy();
  server.close();
  return Buffer.concat(chunks);
}

describe('the TLS ClientHello reader', () => {
  it('reads the server name of a real ClientHello (node:tls, OpenSSL), and none when the client sends none', async () => {
    assert.deepEqual(readClientHello(await nodeHello('api.example.com')), ok('api.example.com'));
    assert.deepEqual(readClientHello(await nodeHello(undefined)), ok(null));
  });

  it('reads a ClientHello larger than one record, split across records, and asks for more until it is whole', () => {
    const hs = clientHello({ names: ['API.Example.com'], padding: 40_000 });
    const bytes = records(hs);
    assert.ok(bytes.length > 2 * 16384, 'three records');
    assert.deepEqual(readClientHello(bytes), ok('api.example.com'));
    assert.deepEqual(readClientHello(records(hs, [1, 2, 3000, 16384])), ok('api.example.com'), 'fragments of any size');
    for (const cut of [0, 1, 4, 5, 6, 16389, bytes.length - 1]) assert.equal(readClientHello(bytes.subarray(0, cut)).state, 'incomplete', `cut at ${cut}`);
  });

  it('refuses what is not one well-formed ClientHello, and says why', () => {
    const hs = clientHello({ names: ['api.example.com'] });
    assert.match(reason(Buffer.from('GET / HTTP/1.1\r\n')), /not TLS \(first byte 0x47\)/);
    assert.match(reason(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])), /record of 0 bytes/);
    assert.match(reason(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01])), /record of 16385 bytes/);
    assert.match(reason(Buffer.concat([records(hs.subarray(0, 10)), Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00])])), /record other than a handshake/);
    assert.match(reason(records(Buffer.concat([Buffer.from([2]), hs.subarray(1)]))), /not a ClientHello/);
    assert.match(reason(records(Buffer.concat([hs, Buffer.from([1, 0, 0, 0])]))), /more handshake data/);
    assert.match(reason(records(clientHello({ names: ['a.example.com'], extensions: [[0, Buffer.from([0, 0])]] }))), /extension 0 appears twice/);
    assert.match(reason(records(clientHello({ names: ['a.example.com', 'b.example.com'] }))), /exactly one host name/);
    assert.match(reason(records(clientHello({ names: [{ type: 1, name: 'a.example.com' }] }))), /exactly one host name/);
    assert.match(reason(records(clientHello({ names: ['a.example.com\0.evil.example'] }))), /not a host name/);
    assert.match(reason(records(clientHello({ names: ['a.example.com.'] }))), /not a host name/);
    assert.match(reason(records(clientHello({ names: [''] }))), /not a host name/);
    assert.match(reason(records(clientHello({ names: ['api.example.com'], extensions: [[0xfe0d, Buffer.alloc(40)]] }))), /ECH/);
    assert.match(reason(records(clientHello({ names: ['api.example.com'], extensions: [[0xffce, Buffer.alloc(40)]] }))), /ESNI/); // esni-legacy
    assert.match(reason(records(clientHello({ names: ['x.example.com'], padding: MAX_HELLO }))), /ClientHello of \d+ bytes/);
    assert.match(reason(records(hs, 1)), /more than 16 records/);
    const truncated = Buffer.from(hs);
    truncated.writeUIntBE(hs.length - 4 + 10, 1, 3); // declares more than the body holds, then ends
    assert.equal(readClientHello(records(truncated)).state, 'incomplete');
  });

  it('accepts a TLS 1.2 ClientHello without extensions, as naming no server', () => {
    assert.deepEqual(readClientHello(records(clientHello({ noExtensions: true }))), ok(null));
  });

  it('property: any bytes give incomplete, ok or invalid, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => ['incomplete', 'ok', 'invalid'].includes(readClientHello(Buffer.from(bytes)).state)));
    // …including bytes that start like a handshake record, so the parser gets past the first check.
    const framed = fc.tuple(fc.integer({ min: 1, max: 400 }), fc.uint8Array({ maxLength: 400 })).map(([len, body]) => Buffer.concat([Buffer.from([0x16, 3, 1, len >> 8, len & 0xff, 1]), Buffer.from(body)]));
    fc.assert(fc.property(framed, (bytes) => ['incomplete', 'ok', 'invalid'].includes(readClientHello(bytes).state)), { numRuns: 2000 });
  });

  it('property: a well-formed hello, split into records of any sizes, yields its name; every strict prefix is incomplete', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const host = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
    const extension = fc.tuple(fc.integer({ min: 1, max: 0xfe00 }), fc.uint8Array({ maxLength: 64 }));
    fc.assert(
      fc.property(host, fc.uniqueArray(extension, { selector: ([type]) => type, maxLength: 6 }).map((e) => e.filter(([t]) => t !== 21)), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 3000 }), (name, extensions, sizes, padding) => {
        const hs = clientHello({ names: [name], extensions: extensions.map(([t, d]) => [t, Buffer.from(d)] as const), padding });
        const bytes = records(hs, sizes.map((s) => Math.max(s, Math.ceil(hs.length / 16))));
        assert.deepEqual(readClientHello(bytes), ok(name));
        const cut = Math.floor(bytes.length / 2);
        assert.equal(readClientHello(bytes.subarray(0, cut)).state, 'incomplete');
      }),
      { numRuns: 300 },
    );
  });

  it('property: a hello with one byte corrupted is refused, incomplete, or yields a name made only of host-name bytes', () => {
    const hs = records(clientHello({ names: ['api.example.com'], padding: 50 }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: hs.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bytes = Buffer.from(hs);
        bytes[at] = (bytes[at] ?? 0) ^ xor;
        const r = readClientHello(bytes);
        // Flipping a byte of the name itself may give another valid name: what a server would read, so what is checked.
        if (r.state === 'ok') assert.ok(r.serverName === null || /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(r.serverName), String(r.serverName));
      }),
      { numRuns: 2000 },
    );
  });
});
