/**
 * Request bodies (attacker-controlled) into JSON, failing closed: a body over the limit, one that is not
 * `application/json` (UTF-8 when a charset is named), not valid UTF-8 (a fatal decoder: nothing is replaced with
 * U+FFFD, so what is hashed and signed is what the caller sent), nested deeper than MAX_BODY_DEPTH or not JSON is
 * refused with its own code, before anything parses or recurses over it. A string (key or value) that is not
 * well-formed UTF-16 — a lone surrogate sent as a `\ud800` escape, which JSON.parse accepts but canonical JSON and
 * UTF-8 cannot represent — is refused VALIDATION_FAILED here, not deep in the pipeline. No body → undefined.
 *
 * Buffered bytes are bounded twice: per request by the body limit, and across all requests by a BodyBudget, so
 * many concurrent bodies cannot hold more than the budget in memory (RATE_LIMITED beyond it). Past a limit the rest
 * is not buffered; the connection is closed after the answer.
 */
import type { IncomingMessage } from 'node:http';
import { LatticeError } from '../errors.ts';

/** Deepest nesting of arrays and objects accepted in any body (action params are held to 32 below this). */
export const MAX_BODY_DEPTH = 64;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes of request bodies being buffered at once, across every request of a server. */
export class BodyBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** Reads and parses the body; `signal` ends the read with its reason (the connection was refused meanwhile). */
export function readJsonBody(req: IncomingMessage, limit: number, budget: BodyBudget, signal: AbortSignal): Promise<unknown> {
  const declared = declaredLength(req);
  if (declared === 0) return Promise.resolve(undefined);
  if (declared !== null && declared > limit) return Promise.reject(tooLarge(limit));
  // Checked before a byte is read; a chunked body (no length declared) may still turn out empty, so at its first byte.
  const unsupported = mediaType(req.headers['content-type']);
  if (declared !== null && unsupported !== null) return Promise.reject(unsupported);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let done = false;
    const finish = (outcome: () => void) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      signal.removeEventListener('abort', onAbort);
      budget.give(held);
      held = 0;
      chunks.length = 0;
      outcome();
    };
    const onData = (chunk: Buffer) => {
      if (unsupported !== null) return finish(() => reject(unsupported));
      size += chunk.length;
      if (size > limit) return finish(() => reject(tooLarge(limit)));
      if (!budget.take(chunk.length)) return finish(() => reject(new LatticeError('RATE_LIMITED', `the gate is reading ${budget.limit} bytes of request bodies at once; retry shortly`)));
      held += chunk.length;
      chunks.push(chunk);
    };
    const onAbort = () => finish(() => reject(signal.reason instanceof LatticeError ? signal.reason : new LatticeError('BAD_REQUEST', 'the request body could not be read')));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData);
    req.once('error', () => finish(() => reject(new LatticeError('BAD_REQUEST', 'the request body could not be read'))));
    req.once('end', () => {
      if (done) return;
      const bytes = Buffer.concat(chunks, size);
      finish(() => resolve(size === 0 ? undefined : Promise.resolve(bytes).then(parseJson)));
    });
  });
}

/** UTF-8 JSON from bytes, fatal on invalid UTF-8, its depth checked before JSON.parse builds anything. */
export function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new LatticeError('BAD_REQUEST', 'the body is not valid UTF-8; send UTF-8 JSON');
  }
  if (nestingExceeds(text, MAX_BODY_DEPTH)) throw new LatticeError('VALIDATION_FAILED', `the body is nested deeper than ${MAX_BODY_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new LatticeError('BAD_REQUEST', 'the body is not valid JSON'); // the parser's detail would echo input back
  }
  if (!stringsWellFormed(value)) throw new LatticeError('VALIDATION_FAILED', 'the body holds a string with a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair); send well-formed Unicode');
  return value;
}

/** Whether every string in a parsed body, object keys included, is well-formed UTF-16 (depth already bounded). */
function stringsWellFormed(value: unknown): boolean {
  if (typeof value === 'string') return wellFormed(value);
  if (Array.isArray(value)) return value.every(stringsWellFormed);
  if (value !== null && typeof value === 'object') return Object.entries(value).every(([key, inner]) => wellFormed(key) && stringsWellFormed(inner));
  return true;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return native === undefined ? !LONE_SURROGATE.test(text) : native.call(text);
}

/**
 * Whether JSON text opens more than `max` arrays or objects at once, in one pass without recursion or allocation.
 * Written by hand: JSON.parse offers no depth limit, and a parser with one would be a second JSON parser to trust.
 * Brackets inside strings are skipped (escapes included); text that is not JSON is left for JSON.parse to refuse.
 */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next character is escaped, whatever it is
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The declared Content-Length, 0 when the request says it has no body, null when it is chunked. */
function declaredLength(req: IncomingMessage): number | null {
  if (req.headers['transfer-encoding'] !== undefined) return null; // Node's parser refuses both headers together
  const length = req.headers['content-length'];
  return length === undefined ? 0 : Number(length); // Node's parser has already refused a malformed one
}

/** A refusal unless the Content-Type is application/json, with no charset or UTF-8. */
function mediaType(header: string | undefined): LatticeError | null {
  const [type, ...parameters] = (header ?? '').split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return new LatticeError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
  const charset = parameters.find((p) => p.startsWith('charset='))?.slice('charset='.length).replaceAll('"', '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return new LatticeError('UNSUPPORTED_MEDIA_TYPE', `the body must be UTF-8 JSON, not charset ${JSON.stringify(charset.slice(0, 32))}`);
  return null;
}

function tooLarge(limit: number): LatticeError {
  return new LatticeError('BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
}
