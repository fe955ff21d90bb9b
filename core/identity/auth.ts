/**
 * Who is asking. Two kinds of callers, never confused:
 *
 * - Agents present `Authorization: DPoP <lease>` and a `DPoP` proof. The lease must parse, exist, match in
 *   constant time, belong to a live peer of the current revocation epoch, and the proof must verify against the
 *   key bound at enrollment, name this method and the configured URL, and be fresh and unseen.
 * - Operators are the admin socket (its file mode is the check), or a bearer token with the needed scope, within
 *   the workspace and presets it is limited to.
 *
 * Every failure is a refusal with its own code; nothing is inferred from the Host header or the socket peer. Every
 * check here reads headers only: a request's body is read once its caller has passed them (`ctx.authenticated`).
 */
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { RequestContext } from '../server/http.ts';
import { credentialMatches, parseCredential } from './credential.ts';
import { verifyDpopProof } from './dpop.ts';
import { currentEpoch, type Peer, type Peers } from './peers.ts';
import type { SqliteReplayStore } from './replay.ts';
import { authenticateToken, isWorkspaceScope, type Scope, type TokenRecord, type WorkspaceScope } from './tokens.ts';
import type { PolicyPreset } from './wireguard.ts';

export interface AgentIdentity {
  readonly peer: Peer;
  readonly leaseId: string;
}

export interface AuthDeps {
  readonly db: LedgerDatabase;
  readonly peers: Peers;
  readonly replay: SqliteReplayStore;
  readonly dpopWindowSeconds: number;
  readonly now?: () => number;
}

export async function authenticateAgent(ctx: RequestContext, deps: AuthDeps): Promise<AgentIdentity> {
  const now = deps.now?.() ?? Date.now();
  const auth = header(ctx, 'authorization');
  const m = auth === undefined ? null : /^DPoP ([^\s]+)$/.exec(auth);
  if (m?.[1] === undefined) throw new LatticeError('UNAUTHENTICATED', 'send Authorization: DPoP <token> with a DPoP proof');
  const token = m[1];
  const parsed = parseCredential(token);
  if (parsed === undefined || !parsed.id.startsWith('lease_')) throw new LatticeError('TOKEN_INVALID', 'the access token is not a lattice lease');
  const lease = statement(deps.db, 'SELECT peer_id, token_hash, expires_at FROM leases WHERE id = ?').get(parsed.id) as { peer_id: string; token_hash: string; expires_at: number } | undefined;
  if (lease === undefined) {
    const revoked = statement(deps.db, 'SELECT 1 FROM revocations WHERE id = ?').get(parsed.id) !== undefined;
    throw new LatticeError(revoked ? 'TOKEN_REVOKED' : 'TOKEN_INVALID', revoked ? 'this lease has been revoked' : 'the access token is not valid (expired peers are removed)');
  }
  if (!credentialMatches(parsed.hash, lease.token_hash)) throw new LatticeError('TOKEN_INVALID', 'the access token is not valid');
  if (lease.expires_at <= now) throw new LatticeError('TOKEN_EXPIRED', 'the lease has expired; enroll again');
  const peer = deps.peers.get(lease.peer_id);
  if (peer.expiresAt <= now) throw new LatticeError('TOKEN_EXPIRED', 'the peer has expired; enroll again');
  if (peer.epoch < currentEpoch(deps.db)) throw new LatticeError('TOKEN_REVOKED', 'every identity issued before the last `lattice revoke --all` is revoked');
  ctx.principal = peer.id;

  const result = await verifyDpopProof({
    proof: header(ctx, 'dpop'),
    method: ctx.method,
    url: ctx.url,
    accessToken: token,
    expectedJkt: peer.jkt,
    now,
    iatWindowSeconds: deps.dpopWindowSeconds,
    replay: deps.replay,
  });
  if (!result.ok) throw new LatticeError(result.code, result.message);
  ctx.authenticated(peer.id);
  return { peer, leaseId: parsed.id };
}

export type Operator = { readonly kind: 'admin' } | { readonly kind: 'token'; readonly token: TokenRecord };

/** What a request with a workspace scope acts on: the workspace (and, to enroll, the preset) a token's limits are checked against. */
export interface Reach {
  readonly workspace: string;
  /** The preset an enrollment gives; checked against an enroll token's presets. */
  readonly preset?: PolicyPreset;
}

/**
 * The admin socket, or a bearer token holding `scope` within its limits (tokens.ts says what they mean). For the
 * scopes a workspace limit applies to, `reach` says what this request acts on; it is asked for only after the
 * token itself is authenticated (from the headers), and only for a token, so a request is refused as
 * unauthenticated before anything it sent is read.
 */
export function authenticateOperator(ctx: RequestContext, db: LedgerDatabase, scope: Exclude<Scope, WorkspaceScope>): Operator;
export function authenticateOperator(ctx: RequestContext, db: LedgerDatabase, scope: WorkspaceScope, reach: () => Reach | Promise<Reach>): Promise<Operator>;
export function authenticateOperator(ctx: RequestContext, db: LedgerDatabase, scope: Scope, reach?: () => Reach | Promise<Reach>): Operator | Promise<Operator> {
  if (ctx.listener === 'admin') {
    ctx.authenticated('operator');
    const admin: Operator = { kind: 'admin' };
    return isWorkspaceScope(scope) ? Promise.resolve(admin) : admin;
  }
  const auth = header(ctx, 'authorization');
  const m = auth === undefined ? null : /^Bearer ([^\s]+)$/.exec(auth);
  if (m?.[1] === undefined) throw new LatticeError('UNAUTHENTICATED', `send Authorization: Bearer <token> with scope ${scope}, or use the admin socket`);
  const token = authenticateToken(db, m[1], Date.now());
  ctx.principal = token.id;
  if (!token.scopes.includes(scope)) throw new LatticeError('FORBIDDEN', `token ${token.id} lacks the ${scope} scope`);
  if (!isWorkspaceScope(scope)) {
    // Refused at creation; a token stored otherwise (made before that check) is refused here.
    if (token.workspace !== null) throw new LatticeError('FORBIDDEN', `token ${token.id} is limited to workspace ${token.workspace}, and ${scope} is not limited per workspace; use a token without a workspace`);
    ctx.authenticated(token.id);
    return { kind: 'token', token };
  }
  if (reach === undefined) throw new Error(`the ${scope} route gave no reach to check token limits against`);
  // The token is authenticated from the headers: the body may be read now, to learn what the request reaches.
  ctx.authenticated(token.id);
  return Promise.resolve(reach()).then((target): Operator => {
    checkReach(token, scope, target);
    return { kind: 'token', token };
  });
  return { kind: 'token', token };
}

function checkReach(token: TokenRecord, scope: WorkspaceScope, target: Reach): void {
  if (token.workspace !== null && token.workspace !== target.workspace) {
    throw new LatticeError('FORBIDDEN', `token ${token.id} is limited to workspace ${token.workspace}; ${scope} in ${target.workspace} needs another token`);
  }
  if (scope !== 'enroll') return;
  const presets = token.presets ?? [];
  if (target.preset === undefined) throw new Error('an enrollment gave no preset to check the token against');
  if (!presets.includes(target.preset)) {
    throw new LatticeError('FORBIDDEN', `token ${token.id} may enroll agents with preset ${presets.join(', ') || '(none)'}, not ${target.preset}; make a token with --preset ${target.preset}`);
  }
}

export type Caller = { readonly kind: 'agent'; readonly agent: AgentIdentity } | { readonly kind: 'operator'; readonly operator: Operator };

/**
 * An agent (a request carrying `Authorization: DPoP`, never on the admin socket) or an operator holding `scope`.
 * Which one is decided by the scheme the caller chose, and each is then held to its own checks in full.
 */
export async function authenticateCaller(ctx: RequestContext, deps: AuthDeps, scope: Exclude<Scope, WorkspaceScope>): Promise<Caller>;
export async function authenticateCaller(ctx: RequestContext, deps: AuthDeps, scope: WorkspaceScope, reach: () => Reach | Promise<Reach>): Promise<Caller>;
export async function authenticateCaller(ctx: RequestContext, deps: AuthDeps, scope: Scope, reach?: () => Reach | Promise<Reach>): Promise<Caller> {
  if (ctx.listener !== 'admin' && /^DPoP /.test(header(ctx, 'authorization') ?? '')) return { kind: 'agent', agent: await authenticateAgent(ctx, deps) };
  // The overloads pair a workspace scope with its reach; without one, authenticateOperator refuses as a bug would.
  const operator = reach === undefined ? authenticateOperator(ctx, deps.db, scope as Exclude<Scope, WorkspaceScope>) : await authenticateOperator(ctx, deps.db, scope as WorkspaceScope, reach);
  return { kind: 'operator', operator };
}

export function operatorName(operator: Operator): string {
  return operator.kind === 'admin' ? 'operator' : operator.token.id;
}

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.headers[name];
  return Array.isArray(value) ? undefined : value; // a repeated auth header is refused, not guessed between
}
