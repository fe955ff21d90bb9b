/**
 * The lattice SDK: an agent's client for the gate.
 *
 *   const lattice = new Lattice();                       // LATTICE_CREDENTIAL, LATTICE_URL
 *   const result = await lattice.execute('fs.read', { params: { path: 'notes.md' } });
 *   await lattice.delegate('reviewer', { capabilities: ['fs.read'], ttl: 600 }, async (sub) => sub.execute(…));
 *
 * Every request carries the lease and a fresh DPoP proof; nothing connects until the first call. Outcomes the
 * gate decides (executed, denied, held, failed) are results from `execute`; `gate` turns them into a value or a
 * typed error. Each logical `execute`/`gate` call has one `eventId` (given or generated), so the retries the
 * transport makes can never run an action twice.
 */
import { exportJWK, generateKeyPair } from 'jose';
import { readCredential, type Credential } from './credential.ts';
import { LatticeDeniedError, LatticeError, LatticeTimeoutError } from './errors.ts';
import { parseEvents, type LatticeEvent } from './events.ts';
import { Transport, type Method } from './transport.ts';
import type {
  ActionInfo, ActionResult, AuditEvent, CanIResult, DelegateOptions, DelegationInfo, ExecuteOptions, GateOptions, LatticeOptions, PolicyInfo, Posture, Subscription, VerifyResult, WhoAmI,
} from './types.ts';

const RESULT_STATUSES = new Set(['executed', 'requested', 'denied', 'expired', 'cancelled', 'withdrawn', 'failed', 'interrupted']);

export class Lattice {
  protected readonly transport: Transport;
  protected readonly options: LatticeOptions;

  constructor(options: LatticeOptions = {}) {
    const credential = resolveCredential(options.credential);
    const baseUrl = options.baseUrl ?? (nonEmpty(process.env['LATTICE_URL']) ? process.env['LATTICE_URL'] : undefined);
    this.options = { ...options, ...(baseUrl !== undefined && { baseUrl }) };
    this.transport = new Transport(credential, this.options);
  }

  /** This client's identity (peer id) as the credential names it. */
  get peerId(): string {
    return this.transport.credential.peerId;
  }

  /** Asks the gate to run an action. Denials, holds and failures are results, not exceptions. */
  execute(actionType: string, options: ExecuteOptions = {}): Promise<ActionResult> {
    const body = {
      params: options.params ?? {},
      eventId: options.eventId ?? globalThis.crypto.randomUUID(),
      ...(options.metadata !== undefined && { metadata: options.metadata }),
      ...(options.dataAccessed !== undefined && { dataAccessed: options.dataAccessed }),
    };
    return this.#result('POST', `/api/v1/actions/${encodeURIComponent(actionType)}/execute`, body);
  }

  /**
   * Runs an action and waits for its outcome: the executed result (with its output), or LatticeDeniedError
   * (denied by policy or by a human, expired or withdrawn), LatticeTimeoutError (still held after `timeoutMs`), or
   * LatticeError (it failed). When `signal` aborts while the request is held, the request is withdrawn first and
   * gate rejects with the signal's reason (or with the error that kept it from being withdrawn).
   */
  async gate(actionType: string, options: GateOptions = {}): Promise<Extract<ActionResult, { status: 'executed' }>> {
    options.signal?.throwIfAborted();
    const first = await this.execute(actionType, { ...options, eventId: options.eventId ?? globalThis.crypto.randomUUID() });
    let result: ActionResult;
    try {
      result = await this.waitForDecision(first, options);
    } catch (error) {
      if (first.status === 'requested' && options.signal?.aborted === true) await this.withdraw(first.approvalId, { reason: 'the caller stopped waiting' });
      throw error;
    }
    return settled(actionType, result, first.status === 'requested' ? first.approvalId : null);
  }

  /**
   * Polls a held request until it is decided or `timeoutMs` passes (then the still-held answer); other answers return
   * at once. When `signal` aborts first, rejects with its reason and leaves the request as it is.
   */
  async waitForDecision(result: ActionResult, options: Pick<GateOptions, 'pollIntervalMs' | 'timeoutMs' | 'onWait' | 'signal'> = {}): Promise<ActionResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
    while (result.status === 'requested' && Date.now() < deadline) {
      options.signal?.throwIfAborted();
      options.onWait?.(result);
      await sleep(Math.min(options.pollIntervalMs ?? 1_000, Math.max(0, deadline - Date.now())), options.signal);
      result = await this.approval(result.approvalId);
    }
    return result;
  }

  /** The current answer for a held request. */
  approval(approvalId: string): Promise<ActionResult> {
    return this.#result('GET', `/api/v1/approvals/${encodeURIComponent(approvalId)}`);
  }

  /**
   * Withdraws a held request of this agent's own, when nobody is left to use its result: it never runs, and the
   * ledger records `approval.withdrawn` (reviewers see it, and approving it is refused). Answers what a poll then
   * answers: `withdrawn`, or the outcome the request already had (denied, expired …) when that came first. A request
   * a reviewer already approved is running and cannot be withdrawn (APPROVAL_NOT_PENDING). Safe to repeat.
   */
  withdraw(approvalId: string, options: { reason?: string } = {}): Promise<ActionResult> {
    return this.#result('POST', `/api/v1/approvals/${encodeURIComponent(approvalId)}/withdraw`, options.reason === undefined ? {} : { reason: options.reason });
  }

  /** What `execute` would decide now, with nothing run and nothing recorded. */
  canI(actionType: string, options: { params?: Record<string, unknown>; dataAccessed?: string[] } = {}): Promise<CanIResult> {
    return this.#call('POST', '/api/v1/can-i', { action: actionType, params: options.params ?? {}, ...(options.dataAccessed !== undefined && { dataAccessed: options.dataAccessed }) });
  }

  whoami(): Promise<WhoAmI> {
    return this.#call('GET', '/api/v1/whoami');
  }

  /** The actions the gate offers, with their request schemas and risk. */
  async actions(): Promise<ActionInfo[]> {
    return (await this.#call<{ actions: ActionInfo[] }>('GET', '/api/v1/actions')).actions;
  }

  /** The policies that can apply to this agent (`own`, the default) or the whole set (`org`). */
  async policies(scope: 'own' | 'org' = 'own'): Promise<{ hash: string | null; version: string | null; policies: PolicyInfo[] }> {
    return this.#call('GET', `/api/v1/policies?scope=${scope}`);
  }

  /** This agent's own events, newest first; pass `nextCursor` back for the next page. */
  audit(options: { cursor?: string; limit?: number; actionType?: string; type?: string } = {}): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options)) if (value !== undefined) query.set(key, String(value));
    const text = query.toString();
    return this.#call('GET', `/api/v1/audit${text === '' ? '' : `?${text}`}`);
  }

  /** The gate's verification of its whole ledger (hash chain, checkpoints, receipts). */
  verify(): Promise<VerifyResult> {
    return this.#call('GET', '/api/v1/audit/verify');
  }

  posture(): Promise<Posture> {
    return this.#call('GET', '/api/v1/posture');
  }

  /** The delegations this agent made (`parent`) or the one that made it (`child`). */
  async delegations(options: { role?: 'parent' | 'child'; activeOnly?: boolean } = {}): Promise<DelegationInfo[]> {
    const query = `role=${options.role ?? 'parent'}&activeOnly=${String(options.activeOnly ?? true)}`;
    return (await this.#call<{ delegations: DelegationInfo[] }>('GET', `/api/v1/delegations?${query}`)).delegations;
  }

  /** Revokes a delegation this agent made (or one below it), with everything it delegated in turn. */
  async revoke(delegationId: string): Promise<string[]> {
    return (await this.#call<{ revoked: string[] }>('DELETE', `/api/v1/delegations/${encodeURIComponent(delegationId)}`)).revoked;
  }

  /** Says how an action this agent ran turned out; recorded as an event linked to it. */
  report(auditEventId: number, status: 'success' | 'failure' | 'partial', message: string): Promise<{ reportEventId: number; auditEventId: number; status: string }> {
    return this.#call('POST', '/api/v1/reports', { auditEventId, status, message });
  }

  /**
   * Calls `callback` with each event as the gate commits it (optionally only these types, or one agent's), and
   * reconnects after a dropped connection from the last event seen. Resolves once the stream is open: every event
   * committed after that is delivered. A callback that throws does not stop the stream.
   */
  async subscribe(callback: (event: LatticeEvent) => void, options: { events?: string[]; agent?: string; onError?: (error: unknown) => void } = {}): Promise<Subscription> {
    const query = new URLSearchParams();
    if (options.events !== undefined) query.set('events', options.events.join(','));
    if (options.agent !== undefined) query.set('agent', options.agent);
    const path = `/api/v1/events${query.size === 0 ? '' : `?${query.toString()}`}`;
    const abort = new AbortController();
    let lastId: string | undefined;
    const connect = async () => {
      const res = await this.transport.open(path, lastId === undefined ? {} : { 'last-event-id': lastId }, abort.signal);
      if (res.statusCode !== 200) throw errorFrom(res.statusCode, await res.body.json().catch(() => null));
      return res;
    };
    let res = await connect();
    const run = async () => {
      for (let failures = 0; !abort.signal.aborted; ) {
        try {
          for await (const event of parseEvents(res.body)) {
            lastId = String(event.seq);
            failures = 0;
            try {
              callback(event);
            } catch (error) {
              options.onError?.(error);
            }
          }
        } catch (error) {
          if (abort.signal.aborted) return;
          options.onError?.(error);
        }
        if (abort.signal.aborted) return;
        await sleep(Math.min(30_000, 1_000 * 2 ** failures++));
        try {
          res = await connect();
        } catch (error) {
          if (error instanceof LatticeError && error.status >= 400 && error.status < 500) throw error; // refused: revoked, expired, forbidden
          options.onError?.(error);
        }
      }
    };
    const closed = run();
    return {
      close: () => abort.abort(),
      closed: closed.catch((error: unknown) => {
        if (!abort.signal.aborted) throw error;
      }),
    };
  }

  /** Ends a subscription (the same as `subscription.close()`). */
  unsubscribe(subscription: Subscription): void {
    subscription.close();
  }

  /**
   * Creates a scoped sub-agent: `capabilities` (a subset of this agent's: `fs.read`, `github.*`) for `ttl` (seconds,
   * `300`, or a duration, `'5m'`; at most a day, and no longer than this agent lives). Its key pair is made here;
   * the gate never sees the private key. With `body`, runs it with the sub-agent and always revokes it when the
   * body settles; without, returns the sub-agent, which is AsyncDisposable (`await using sub = await lattice.delegate(…)`).
   */
  delegate(name: string, options: DelegateOptions): Promise<DelegatedLattice>;
  delegate<T>(name: string, options: DelegateOptions, body: (sub: DelegatedLattice) => Promise<T>): Promise<T>;
  async delegate<T>(name: string, options: DelegateOptions, body?: (sub: DelegatedLattice) => Promise<T>): Promise<DelegatedLattice | T> {
    const keys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const publicJwk = (await exportJWK(keys.publicKey)) as Record<string, string>;
    const privateJwk = (await exportJWK(keys.privateKey)) as Record<string, string>;
    const reply = await this.#call<{ peerId: string; leaseId: string; enrollmentToken: string; expiresAt: string }>('POST', '/api/v1/delegations', { name, capabilities: options.capabilities, ttl: options.ttl, publicJwk });
    const credential: Credential = {
      version: 1, peerId: reply.peerId, leaseId: reply.leaseId, token: reply.enrollmentToken, alg: 'EdDSA', privateJwk, publicJwk,
      socketPath: this.transport.socketPath, baseUrl: this.transport.baseUrl, expiresAt: reply.expiresAt,
    };
    const sub = new DelegatedLattice({ ...this.options, credential }, this);
    if (body === undefined) return sub;
    try {
      return await body(sub);
    } finally {
      await sub.revoke();
    }
  }

  /**
   * Runs tasks (typically `delegate(…, body)` calls) side by side and waits for every one to settle before
   * answering, so no sub-agent is left running or unrevoked when one fails: the results in order, or the first
   * failure (an AggregateError when several failed).
   */
  static async parallel<T extends readonly unknown[]>(...tasks: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
    const settledTasks = await Promise.allSettled(tasks);
    const failures = settledTasks.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} of ${tasks.length} parallel tasks failed`);
    return settledTasks.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
  }

  /** Closes this client's connections (a new call reconnects). */
  async close(): Promise<void> {
    await this.transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A JSON request; an error answer becomes a LatticeError with the gate's code. */
  async #call<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const reply = await this.transport.send(method, path, body, { idempotent: method !== 'POST' || path === '/api/v1/can-i' });
    if (reply.status >= 400) throw errorFrom(reply.status, reply.body);
    return reply.body as T;
  }

  async #result(method: Method, path: string, body?: unknown): Promise<ActionResult> {
    const reply = await this.transport.send(method, path, body, { idempotent: true }); // execute carries its eventId
    const status = (reply.body as { status?: unknown } | null)?.status;
    if (typeof status === 'string' && RESULT_STATUSES.has(status)) return reply.body as ActionResult;
    throw errorFrom(reply.status, reply.body);
  }
}

/** A sub-agent made by `delegate`: the same client, plus revocation by the agent that made it. */
export class DelegatedLattice extends Lattice {
  private revoked: Promise<void> | undefined;

  constructor(
    options: LatticeOptions,
    private readonly parent: Lattice,
  ) {
    super(options);
  }

  /** Revokes this sub-agent and everything it delegated (once; later calls wait for the first). */
  override revoke(): Promise<string[]>;
  override revoke(delegationId: string): Promise<string[]>;
  override async revoke(delegationId?: string): Promise<string[]> {
    if (delegationId !== undefined) return super.revoke(delegationId);
    this.revoked ??= (async () => {
      try {
        await this.parent.revoke(this.peerId);
      } catch (error) {
        // Already gone is the state revocation wants: this sub-agent (or the agent above it, whose removal takes
        // this one with it) was revoked or expired first. Anything else is a real failure.
        if (!(error instanceof LatticeError && ['PEER_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_REVOKED', 'TOKEN_EXPIRED'].includes(error.code))) throw error;
      } finally {
        await this.close();
      }
    })();
    await this.revoked;
    return [this.peerId];
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    await this.revoke();
  }
}

function settled(actionType: string, result: ActionResult, approvalId: string | null): Extract<ActionResult, { status: 'executed' }> {
  switch (result.status) {
    case 'executed':
      return result;
    case 'denied':
      throw new LatticeDeniedError(result.message, result.denialReason, result.policy, result.conditions, approvalId);
    case 'expired':
    case 'cancelled':
    case 'withdrawn':
      throw new LatticeDeniedError(result.message, `APPROVAL_${result.status.toUpperCase()}`, null, [], result.approvalId);
    case 'failed':
      throw new LatticeError(result.error.code, result.error.message, { receiptId: result.receiptId, requestId: result.requestId });
    case 'interrupted':
      throw new LatticeError('INTERRUPTED', result.message, { receiptId: result.receiptId, requestId: result.requestId });
    case 'requested':
      throw new LatticeTimeoutError(`${actionType} is still waiting for approval ${result.approvalId}`, result.approvalId);
  }
}

function errorFrom(status: number, body: unknown): LatticeError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : 'GATE_ERROR';
  const message = typeof error?.message === 'string' ? error.message : `the gate answered ${status}`;
  return new LatticeError(code, message, {}, status);
}

function resolveCredential(given: Credential | string | undefined): Credential {
  const source = given ?? process.env['LATTICE_CREDENTIAL'];
  if (source === undefined || source === '') {
    throw new LatticeError('CREDENTIAL_MISSING', 'no credential: pass { credential } or set LATTICE_CREDENTIAL to a file made by `lattice enroll`');
  }
  if (typeof source !== 'string') return source;
  try {
    return readCredential(source);
  } catch (error) {
    throw new LatticeError('CREDENTIAL_INVALID', error instanceof Error ? error.message : String(error));
  }
}

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}

/** Waits `ms`; rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason as Error);
    const aborted = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
