/**
 * HTTP to the gate with undici: over the credential's unix socket, or to an http(s) base URL for a remote gate.
 * Each attempt gets a fresh DPoP proof (a proof is single-use). Retries: 5xx answers and network failures are
 * retried with exponential backoff (by default 1 s, 2 s, 4 s: three retries) when the request is safe to repeat —
 * reads, deletes, and requests the gate deduplicates (an execute carries its eventId); other requests are retried
 * only when the connection was refused, so the gate never saw them. Each attempt times out after `timeoutMs`.
 */
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import type { Credential } from './credential.ts';
import { makeProof } from './dpop.ts';
import { LatticeError } from './errors.ts';

/**
 * undici, loaded by the first request: a command that never calls the gate does not pay ~80 ms to import it. Its
 * `default` (module.exports) is the one shape both a bundle's and Node's own import of this CommonJS package have.
 */
let undici: Promise<typeof Undici.default> | undefined;
const loadUndici = () => (undici ??= import('undici').then((m) => m.default));

export type Method = 'GET' | 'POST' | 'DELETE';

export interface TransportOptions {
  /** Overrides the credential's socket (null: use `baseUrl` over TCP). */
  readonly socketPath?: string | null;
  /** A remote gate's base URL (its configured `gate.base_url`); with it and no socket, requests go over HTTP(S). */
  readonly baseUrl?: string;
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** First backoff; doubled for each retry. */
  readonly backoffMs?: number;
}

export interface SendOptions {
  /** Safe to repeat after an unknown outcome (GET/DELETE, or deduplicated by the gate). */
  readonly idempotent: boolean;
  /** Extra headers (e.g. Last-Event-ID). */
  readonly headers?: Record<string, string>;
}

/** Node's and undici's codes for a connection that was never made: the request cannot have reached the gate. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'UND_ERR_CONNECT_TIMEOUT']);

export class Transport {
  readonly socketPath: string | null;
  /** What DPoP proofs name as `htu` (the gate checks it against its configured base URL). */
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private dispatcher: Dispatcher | undefined;

  constructor(
    readonly credential: Credential,
    options: TransportOptions = {},
  ) {
    const remote = options.baseUrl !== undefined && options.socketPath === undefined;
    this.socketPath = remote ? null : (options.socketPath ?? credential.socketPath);
    this.baseUrl = (options.baseUrl ?? credential.baseUrl).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 1_000;
  }

  /** One logical request: JSON in, `{status, body}` out, retried as the header says. */
  async send(method: Method, path: string, body: unknown, options: SendOptions): Promise<{ status: number; body: unknown }> {
    for (let attempt = 0; ; attempt++) {
      let failure: LatticeError;
      try {
        const reply = await this.once(method, path, body, options.headers ?? {});
        if (reply.status < 500 || !options.idempotent || attempt >= this.retries) return reply;
        failure = new LatticeError('GATE_ERROR', `the gate answered ${reply.status}`, {}, reply.status);
      } catch (error) {
        const code = errorCode(error);
        failure = unreachable(error, code, this.socketPath ?? this.baseUrl, this.timeoutMs);
        if (attempt >= this.retries || !(options.idempotent || NOT_SENT.has(code))) throw failure;
      }
      await new Promise((resolve) => setTimeout(resolve, this.backoffMs * 2 ** attempt));
    }
  }

  /** Opens a long-lived GET (Server-Sent Events); the caller reads and closes the body. */
  async open(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    try {
      const { request } = await loadUndici();
      return await request(this.url(path), { method: 'GET', headers: await this.headers('GET', path, headers), dispatcher: await this.connection(), signal, headersTimeout: this.timeoutMs, bodyTimeout: 0 });
    } catch (error) {
      throw unreachable(error, errorCode(error), this.socketPath ?? this.baseUrl, this.timeoutMs);
    }
  }

  async close(): Promise<void> {
    const dispatcher = this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close();
  }

  private async once(method: Method, path: string, body: unknown, extra: Record<string, string>): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = await this.headers(method, path, payload === undefined ? extra : { ...extra, 'content-type': 'application/json' });
    const { request } = await loadUndici();
    const res = await request(this.url(path), { method, headers, ...(payload !== undefined && { body: payload }), dispatcher: await this.connection(), signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.body.text();
    try {
      return { status: res.statusCode, body: JSON.parse(text) as unknown };
    } catch {
      throw new LatticeError('BAD_RESPONSE', `the gate answered ${res.statusCode} with something that is not JSON`, {}, res.statusCode);
    }
  }

  private async headers(method: Method, path: string, extra: Record<string, string>): Promise<Record<string, string>> {
    const c = this.credential;
    const htu = `${this.baseUrl}${path.split('?')[0] ?? path}`; // a proof names the URL without its query (RFC 9449)
    const proof = await makeProof({ alg: c.alg, privateJwk: c.privateJwk, publicJwk: c.publicJwk, method, url: htu, accessToken: c.token });
    return { ...extra, authorization: `DPoP ${c.token}`, dpop: proof };
  }

  private url(path: string): string {
    return this.socketPath === null ? `${this.baseUrl}${path}` : `http://localhost${path}`;
  }

  /** Lazy: nothing connects until the first request. */
  private async connection(): Promise<Dispatcher> {
    const { Agent, getGlobalDispatcher } = await loadUndici();
    if (this.socketPath === null) return getGlobalDispatcher();
    this.dispatcher ??= new Agent({ connect: { socketPath: this.socketPath } });
    return this.dispatcher;
  }
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code ?? e?.name;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function unreachable(error: unknown, code: string, where: string, timeoutMs: number): LatticeError {
  if (error instanceof LatticeError) return error;
  if (code === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT') return new LatticeError('GATE_TIMEOUT', `the gate at ${where} did not answer within ${timeoutMs} ms`);
  const message = NOT_SENT.has(code) ? `no gate answers at ${where}; is \`lattice up\` running?` : `the connection to the gate at ${where} failed (${code})`;
  return new LatticeError('GATE_UNREACHABLE', message, { cause: code });
}
