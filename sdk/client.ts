/**
 * A minimal client for the gate over its unix socket (or an http(s) base URL): every request carries the lease
 * and a fresh DPoP proof. Errors from the gate come back as GateError with the gate's stable code.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Credential } from './credential.ts';
import { makeProof } from './dpop.ts';

export class GateError extends Error {
  override readonly name = 'GateError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The gate's answer about one action request (execute, a repeat of it, or a poll of its approval). */
export type ActionResult =
  | { status: 'executed'; requestId: string; auditEventId: number; receiptId: string; output: unknown; policy: string | null; policies: string[]; conditions: unknown[] }
  | { status: 'requested'; requestId: string; approvalId: string; planSha256: string; timeoutAt: string; policy: string | null; reason: string | null }
  | { status: 'denied'; requestId: string; denialReason: string; message: string; policy: string | null; policies: string[]; reason: string | null; conditions: unknown[] }
  | { status: 'expired' | 'cancelled'; requestId: string; approvalId: string; message: string }
  | { status: 'failed'; requestId: string; receiptId: string; error: { code: string; message: string } }
  | { status: 'interrupted'; requestId: string; receiptId: string; message: string };

export interface ExecuteOptions {
  /** Makes the request idempotent: a repeat returns the first answer and runs nothing twice. */
  readonly eventId?: string;
  readonly metadata?: Record<string, string>;
  /** Labels of the data the agent has read (e.g. `secrets`), for policies on what may follow. */
  readonly dataAccessed?: string[];
}

const RESULT_STATUSES = new Set(['executed', 'requested', 'denied', 'expired', 'cancelled', 'failed', 'interrupted']);

export class GateClient {
  constructor(private readonly credential: Credential) {}

  /** A request with a fresh DPoP proof; a 4xx/5xx error body becomes a GateError. */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const reply = await this.request(method, path, body);
    if (reply.status >= 400) throw toGateError(reply);
    return reply.body as T;
  }

  /** Asks the gate to run an action; denials, holds and failures are results, not exceptions. */
  execute(action: string, params: Record<string, unknown>, options: ExecuteOptions = {}): Promise<ActionResult> {
    const body = { params, ...(options.eventId !== undefined && { eventId: options.eventId }), ...(options.metadata !== undefined && { metadata: options.metadata }), ...(options.dataAccessed !== undefined && { dataAccessed: options.dataAccessed }) };
    return this.result('POST', `/api/v1/actions/${encodeURIComponent(action)}/execute`, body);
  }

  /** The current answer for a held request. */
  approval(approvalId: string): Promise<ActionResult> {
    return this.result('GET', `/api/v1/approvals/${encodeURIComponent(approvalId)}`);
  }

  /** Polls a held request until it is decided (or `timeoutMs` passes: then the last, still pending, answer). */
  async waitForDecision(approvalId: string, options: { timeoutMs?: number; intervalMs?: number; onWait?: () => void } = {}): Promise<ActionResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 24 * 3_600_000);
    for (;;) {
      const result = await this.approval(approvalId);
      if (result.status !== 'requested' || Date.now() >= deadline) return result;
      options.onWait?.();
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 1000));
    }
  }

  /** The decision execute would make now, with nothing run and nothing recorded. */
  canI(action: string, params: Record<string, unknown>, dataAccessed?: string[]): Promise<{ decision: 'allow' | 'hold' | 'deny'; allowed: boolean; needsApproval: boolean; denialReason: string | null; message: string | null; policy: string | null; conditions: unknown[]; planSha256: string }> {
    return this.call('POST', '/api/v1/can-i', { action, params, ...(dataAccessed !== undefined && { dataAccessed }) });
  }

  private async result(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ActionResult> {
    const reply = await this.request(method, path, body);
    const status = (reply.body as { status?: unknown } | null)?.status;
    if (typeof status === 'string' && RESULT_STATUSES.has(status)) return reply.body as ActionResult;
    throw toGateError(reply);
  }

  private async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const c = this.credential;
    const url = `${c.baseUrl}${path}`;
    const proof = await makeProof({ alg: c.alg, privateJwk: c.privateJwk, publicJwk: c.publicJwk, method, url, accessToken: c.token });
    const headers: Record<string, string> = { authorization: `DPoP ${c.token}`, dpop: proof };
    return send(c, method, url, path, headers, body);
  }
}

function toGateError(reply: { status: number; body: unknown }): GateError {
  const error = (reply.body as { error?: { code?: string; message?: string } } | null)?.error;
  return new GateError(reply.status, error?.code ?? 'UNKNOWN', error?.message ?? `the gate answered ${reply.status}`);
}

function send(c: Credential, method: string, url: string, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  const target = new URL(url);
  const options = c.socketPath !== null ? { socketPath: c.socketPath, path, method, headers } : { hostname: target.hostname, port: target.port, path, method, headers };
  const request = target.protocol === 'https:' && c.socketPath === null ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (error) {
          reject(new GateError(res.statusCode ?? 0, 'BAD_RESPONSE', `the gate answered with something that is not JSON: ${String(error)}`));
        }
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) =>
      reject(new GateError(0, 'GATE_UNREACHABLE', error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? `no gate answers at ${c.socketPath ?? url}; is \`lattice up\` running?` : error.message)),
    );
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
