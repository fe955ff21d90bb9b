/**
 * One-shot grants: the authorization to run one request's plan exactly once. A grant is Ed25519-signed by the
 * gate's ledger key over JCS of its body, which binds the request, the agent, the request hash, the plan hash and an
 * expiry. It is consumed by inserting it into `grants` inside the transaction that records the intent, before any
 * effect runs: the primary key refuses a second use of the grant, the unique request id a second execution of the
 * request under any grant. Consumption checks every binding first, and the signature of any grant this process did
 * not issue itself (one it issued is a frozen object it just signed; verifying that again proves nothing and costs
 * more than the signing); any mismatch refuses. The stored signature is for whoever audits the table later.
 */
import { canonicalize } from '../canonical.ts';
import { randomId } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import type { Signer } from '../keys/keyring.ts';
import type { PublicKeySet } from '../keys/keyset.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import { checkSignature } from '../ledger/checkpoint.ts';

export interface GrantBinding {
  readonly requestId: string;
  readonly peerId: string;
  readonly action: string;
  readonly requestHash: string;
  readonly planSha256: string;
}

export interface GrantBody extends GrantBinding {
  readonly v: 1;
  readonly id: string;
  readonly keyId: string;
  readonly expiresAt: number;
}

export interface Grant {
  readonly id: string;
  /** JCS of the GrantBody. */
  readonly body: string;
  readonly signature: string;
}

/** Grants are used within moments of their issue; a short life bounds what a leaked one could ever be worth. */
export const GRANT_TTL_MS = 60_000;

/** Grants issued by this process, exactly as issued (frozen). */
const issued = new WeakSet<Grant>();

export async function issueGrant(signer: Signer, binding: GrantBinding, now: number): Promise<Grant> {
  const body: GrantBody = { v: 1, id: randomId('grant'), keyId: signer.keyId, expiresAt: now + GRANT_TTL_MS, ...binding };
  const text = canonicalize({ ...body });
  const grant: Grant = Object.freeze({ id: body.id, body: text, signature: await signer.signAsync(text) });
  issued.add(grant);
  return grant;
}

/** Verifies the grant against what is about to run and consumes it; must run inside the intent's transaction. */
export function consumeGrant(tx: LedgerDatabase, keys: PublicKeySet, grant: Grant, expected: GrantBinding, now: number): void {
  const body = JSON.parse(grant.body) as GrantBody;
  if (!issued.has(grant) && checkSignature(keys, body.keyId, grant.body, grant.signature) !== 'ok') throw new LatticeError('GRANT_INVALID', 'the grant signature does not verify');
  for (const field of ['requestId', 'peerId', 'action', 'requestHash', 'planSha256'] as const) {
    if (body[field] !== expected[field]) throw new LatticeError('GRANT_INVALID', `the grant is bound to another ${field}`);
  }
  if (body.id !== grant.id) throw new LatticeError('GRANT_INVALID', 'the grant id does not match its body');
  if (body.expiresAt <= now) throw new LatticeError('GRANT_INVALID', 'the grant has expired');
  const inserted = statement(tx, 'INSERT INTO grants (id, request_id, body, signature, consumed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING').run(grant.id, body.requestId, grant.body, grant.signature, now);
  if (inserted.changes !== 1) throw new LatticeError('GRANT_CONSUMED', `request ${body.requestId} has already been executed; nothing runs twice`);
}

/** Refuses unless the grant `id` has been consumed (its row is visible to this transaction). */
export function assertConsumed(tx: LedgerDatabase, id: string): void {
  if (statement(tx, 'SELECT 1 FROM grants WHERE id = ?').get(id) === undefined) throw new LatticeError('GRANT_INVALID', `grant ${id} was never consumed; nothing is recorded as run without one`);
}
