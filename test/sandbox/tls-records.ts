/** TLS ClientHellos built byte by byte for tests: the handshake message, and its split into records. */

export interface HelloSpec {
  /** server_name entries (host_name type 0 unless given), in order; none: no server_name extension. */
  readonly names?: readonly (string | { readonly type: number; readonly name: string })[];
  /** Extensions as [type, data], in order, after server_name. */
  readonly extensions?: readonly (readonly [number, Buffer])[];
  /** Bytes of a padding extension (21), to make the hello as large as wanted. */
  readonly padding?: number;
  readonly sessionId?: Buffer;
  readonly suites?: readonly number[];
  /** Leave the extensions block out entirely (a TLS 1.2 hello may). */
  readonly noExtensions?: boolean;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);

export function serverNameExtension(names: NonNullable<HelloSpec['names']>): Buffer {
  const entries = names.map((n) => (typeof n === 'string' ? { type: 0, name: n } : n)).map((n) => Buffer.concat([Buffer.from([n.type]), vec16(Buffer.from(n.name, 'latin1'))]));
  return vec16(Buffer.concat(entries));
}

/** The ClientHello handshake message (type, 3-byte length, body). */
export function clientHello(spec: HelloSpec = {}): Buffer {
  const sessionId = spec.sessionId ?? Buffer.alloc(32, 7);
  const suites = Buffer.concat((spec.suites ?? [0x1301, 0x1302, 0xc02f]).map(u16));
  const extensions: Buffer[] = [];
  if (spec.names !== undefined) extensions.push(u16(0), vec16(serverNameExtension(spec.names)));
  for (const [type, data] of spec.extensions ?? []) extensions.push(u16(type), vec16(data));
  if (spec.padding !== undefined) extensions.push(u16(21), vec16(Buffer.alloc(spec.padding)));
  const body = Buffer.concat([
    u16(0x0303), Buffer.alloc(32, 0x42), Buffer.from([sessionId.length]), sessionId, vec16(suites), Buffer.from([1, 0]),
    ...(spec.noExtensions === true ? [] : [vec16(Buffer.concat(extensions))]),
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** The handshake bytes as TLS records of at most `fragment` bytes each (or of the sizes given, cycling). */
export function records(handshake: Buffer, fragment: number | readonly number[] = 16384): Buffer {
  const sizes = typeof fragment === 'number' ? [fragment] : fragment;
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < handshake.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 16384);
    const part = handshake.subarray(at, at + size);
    out.push(Buffer.from([0x16, 0x03, 0x01]), u16(part.length), part);
    at += part.length;
  }
  return Buffer.concat(out);
}
