/**
 * The TLS ClientHello at the start of a CONNECT tunnel, read so the proxy can compare its server_name (SNI) with the
 * CONNECT host before a byte goes upstream. The bytes are the agent's: attacker-controlled.
 *
 * Fail closed: anything that is not one well-formed ClientHello within the limits below is `invalid`, never passed
 * on: another first byte (not TLS), another record type or handshake message first, lengths that disagree, a
 * duplicated extension, more than one host name or a name with bytes no host name has, an encrypted ClientHello
 * (ECH) or encrypted server name (ESNI, its draft predecessor), whose real server name is hidden from us, or a hello larger than MAX_HELLO or split into more than
 * MAX_RECORDS records. A hello split across TCP segments, or across several TLS records, is read whole.
 *
 * Written by hand: read-tls-client-hello (the maintained pure-JS reader) reads only the first TLS record, so a
 * ClientHello longer than one record fails there, keeps the first of two server_name extensions (a server may take
 * the other) and turns a malformed server_name into "no name"; node:tls gives the name only by terminating TLS.
 */
import type { Duplex } from 'node:stream';

export type ClientHello =
  | { readonly state: 'incomplete'; readonly need: number } // nothing changes before `need` bytes have come
  | { readonly state: 'ok'; readonly serverName: string | null }
  | { readonly state: 'invalid'; readonly reason: string };

/** Handshake message bytes (a post-quantum key share makes today's about 1.8 KiB). */
export const MAX_HELLO = 64 * 1024;
export const MAX_RECORDS = 16;
const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const MAX_FRAGMENT = 16384;
const EXT_SERVER_NAME = 0;
const EXT_ECH = 0xfe0d;
/** ESNI (draft-ietf-tls-esni-01 to -04), ECH's predecessor: its encrypted_server_name hides the name too. */
const EXT_ESNI = 0xffce;
const HOST_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

const invalid = (reason: string): ClientHello => ({ state: 'invalid', reason });

/** Reads the ClientHello from the bytes a client sent so far; `incomplete` asks for more. */
export function readClientHello(bytes: Buffer): ClientHello {
  if (bytes.length > 0 && bytes[0] !== HANDSHAKE) return invalid(`not TLS (first byte 0x${(bytes[0] ?? 0).toString(16).padStart(2, '0')})`);
  const fragments: Buffer[] = [];
  let total = 0;
  for (let at = 0; ; ) {
    if (bytes.length - at < 5) return { state: 'incomplete', need: at + 5 };
    const [type, major] = [bytes[at], bytes[at + 1]];
    const length = bytes.readUInt16BE(at + 3);
    if (type !== HANDSHAKE) return invalid('a record other than a handshake came before the ClientHello ended');
    if (major !== 3) return invalid('not a TLS record version');
    if (length === 0 || length > MAX_FRAGMENT) return invalid(`a TLS record of ${length} bytes`);
    if (fragments.length === MAX_RECORDS) return invalid(`the ClientHello spans more than ${MAX_RECORDS} records`);
    if (bytes.length - at - 5 < length) return { state: 'incomplete', need: at + 5 + length };
    fragments.push(bytes.subarray(at + 5, at + 5 + length));
    total += length;
    at += 5 + length;
    if (total < 4) continue;
    const head = fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments, 4);
    if (head[0] !== CLIENT_HELLO) return invalid('the first handshake message is not a ClientHello');
    const size = head.readUIntBE(1, 3);
    if (size > MAX_HELLO) return invalid(`a ClientHello of ${size} bytes (at most ${MAX_HELLO})`);
    if (total < 4 + size) continue;
    if (total > 4 + size) return invalid('more handshake data after the ClientHello');
    return parseBody(Buffer.concat(fragments).subarray(4));
  }
}

/** A cursor that reports an overrun instead of reading past the end. */
class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  get left(): number {
    return this.buf.length - this.at;
  }
  take(n: number): Buffer | undefined {
    if (n > this.left) return undefined;
    this.at += n;
    return this.buf.subarray(this.at - n, this.at);
  }
  /** A vector with a 1- or 2-byte length prefix. */
  vector(prefix: 1 | 2): Buffer | undefined {
    const len = this.take(prefix);
    return len === undefined ? undefined : this.take(prefix === 1 ? (len[0] ?? 0) : len.readUInt16BE(0));
  }
}

function parseBody(body: Buffer): ClientHello {
  const r = new Reader(body);
  const version = r.take(2);
  if (version === undefined || version[0] !== 3) return invalid('not a TLS ClientHello version');
  if (r.take(32) === undefined) return invalid('the ClientHello is cut short');
  const sessionId = r.vector(1);
  const suites = r.vector(2);
  const compression = r.vector(1);
  if (sessionId === undefined || suites === undefined || compression === undefined) return invalid('the ClientHello is cut short');
  if (sessionId.length > 32 || suites.length < 2 || suites.length % 2 !== 0 || compression.length < 1) return invalid('malformed ClientHello fields');
  if (r.left === 0) return { state: 'ok', serverName: null }; // TLS 1.2 allows a hello without extensions
  const extensions = r.vector(2);
  if (extensions === undefined || r.left !== 0) return invalid('the extensions\' length disagrees with the ClientHello\'s');
  const e = new Reader(extensions);
  const seen = new Set<number>();
  let serverName: string | null = null;
  while (e.left > 0) {
    const type = e.take(2)?.readUInt16BE(0);
    const data = e.vector(2);
    if (type === undefined || data === undefined) return invalid('an extension is cut short');
    if (seen.has(type)) return invalid(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_ECH) return invalid('an encrypted ClientHello (ECH) hides the server name');
    if (type === EXT_ESNI) return invalid('an encrypted server name (ESNI) hides the server name');
    if (type !== EXT_SERVER_NAME) continue;
    const name = readServerName(data);
    if (typeof name !== 'string') return name;
    serverName = name;
  }
  return { state: 'ok', serverName };
}

/** RFC 6066 ServerNameList: exactly one host_name entry, an ASCII host name without a trailing dot. */
function readServerName(data: Buffer): string | ClientHello {
  const outer = new Reader(data);
  const list = outer.vector(2);
  if (list === undefined || outer.left !== 0 || list.length === 0) return invalid('malformed server_name extension');
  const r = new Reader(list);
  const type = r.take(1)?.[0];
  const name = r.vector(2);
  if (type !== 0 || name === undefined || r.left !== 0) return invalid('the server_name extension must hold exactly one host name');
  const text = name.toString('latin1').toLowerCase();
  if (name.length === 0 || name.length > 253 || !HOST_NAME.test(text)) return invalid('the server_name is not a host name');
  return text;
}

export type HelloOutcome = { readonly ok: true; readonly serverName: string | null; readonly bytes: Buffer } | { readonly ok: false; readonly reason: string };

/**
 * Reads a tunnel's first bytes (`head`: what came with the CONNECT) until the ClientHello is whole, invalid, the
 * client ends, or `timeoutMs` passes. `bytes` is everything read, to send upstream once the name is checked.
 */
export function awaitClientHello(client: Duplex, head: Buffer, timeoutMs: number): Promise<HelloOutcome> {
  return new Promise((resolve) => {
    const chunks = [head];
    let [have, need] = [head.length, 1];
    const settle = (outcome: HelloOutcome) => {
      clearTimeout(timer);
      client.off('data', onData).off('end', onEnd).off('close', onEnd);
      client.pause();
      resolve(outcome);
    };
    // Parsed again only once the bytes it waits for are here, so a client sending one byte at a time costs no more.
    const check = () => {
      if (have < need) return;
      const bytes = Buffer.concat(chunks.splice(0), have);
      chunks.push(bytes);
      const hello = readClientHello(bytes);
      if (hello.state === 'ok') settle({ ok: true, serverName: hello.serverName, bytes });
      else if (hello.state === 'invalid') settle({ ok: false, reason: `the tunnel did not start with a TLS ClientHello: ${hello.reason}` });
      else need = hello.need;
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      check();
    };
    const onEnd = () => settle({ ok: false, reason: 'the client closed the tunnel before its TLS ClientHello was whole' });
    const timer = setTimeout(() => settle({ ok: false, reason: `no TLS ClientHello within ${timeoutMs / 1000} s` }), timeoutMs);
    client.on('data', onData).on('end', onEnd).on('close', onEnd);
    check();
  });
}
