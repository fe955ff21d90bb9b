/**
 * Keeps a credential route's key out of what the upstream answers: an upstream that echoes requests (TRACE, a debug
 * or echo endpoint, an error that quotes the request) would otherwise hand the injected key to the agent.
 *
 * Each occurrence of a secret is overwritten with as many `*` as it has bytes, so lengths (Content-Length, WebSocket
 * frame lengths) stay right. A stream holds back only a tail that could begin a secret, so a server-sent event
 * reaches the agent when it is sent. Written by hand: this is a byte search across chunk boundaries, which no
 * maintained stream library offers for a fixed set of needles.
 *
 * Fail closed: this sees bytes as they come; the credential proxy (proxy.ts) asks for an unencoded body, decodes gzip, deflate and br
 * and refuses an encoding it cannot read, so a compressed echo cannot carry the key past it.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface Redactor {
  /** `text` with every secret overwritten. */
  text(text: string): string;
  /** A stream that overwrites every secret in what passes through it, across chunk boundaries. */
  stream(): Transform;
}

export function redactor(secrets: readonly string[]): Redactor {
  const needles = [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length).map((s) => Buffer.from(s, 'utf8'));
  const scrub = (buf: Buffer): Buffer => {
    for (const needle of needles) {
      for (let at = buf.indexOf(needle); at !== -1; at = buf.indexOf(needle, at + needle.length)) buf.fill(0x2a, at, at + needle.length);
    }
    return buf;
  };
  /** How many bytes at the end of `buf` could be the start of a secret still to come. */
  const held = (buf: Buffer): number => {
    let keep = 0;
    for (const needle of needles) {
      for (let n = Math.min(needle.length - 1, buf.length); n > keep; n--) {
        if (buf.subarray(buf.length - n).equals(needle.subarray(0, n))) {
          keep = n;
          break;
        }
      }
    }
    return keep;
  };
  return {
    text: (text) => scrub(Buffer.from(text, 'utf8')).toString('utf8'),
    stream: () => {
      let tail = Buffer.alloc(0);
      return new Transform({
        transform(chunk: Buffer, _encoding, done: TransformCallback) {
          const buf = scrub(Buffer.concat([tail, chunk]));
          const keep = held(buf);
          tail = Buffer.from(buf.subarray(buf.length - keep));
          done(null, buf.subarray(0, buf.length - keep));
        },
        flush(done: TransformCallback) {
          done(null, tail);
        },
      });
    },
  };
}
