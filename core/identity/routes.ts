/**
 * The identity API. Agents enroll (with a workspace token or through the admin socket), ask who they are, renew
 * and leave; the operator lists, deletes and revokes peers, manages tokens and secrets, and renders firewall
 * rules. Every state change is committed with its ledger event; every refusal is recorded by the server.
 */
import type { GateConfig } from '../config/config.ts';
import { LatticeError } from '../errors.ts';
import type { HomePaths } from '../home.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { loadOrCreateMasterKey } from '../secrets/master-key.ts';
import { SecretStore } from '../secrets/store.ts';
import type { RequestContext, Route } from '../server/http.ts';
import { bodyDuration, durationMember, validator } from '../server/validate.ts';
import { authenticateAgent, authenticateCaller, authenticateOperator, operatorName, type AuthDeps } from './auth.ts';
import { delegationRoutes } from './delegations.ts';
import { gateWireGuardKey } from './gate-wireguard.ts';
import { renderNftRuleset } from './nft.ts';
import { gateAddress, parseCidr } from './overlay.ts';
import { Peers, currentEpoch, recordRevocation, type Enrolled, type Peer } from './peers.ts';
import { SqliteReplayStore } from './replay.ts';
import { SCOPES, createToken, listTokens, revokeToken, tokenLimits, type Scope } from './tokens.ts';
import { POLICY_PRESETS, allowedIpsForPreset, renderWgQuickConfig, type PolicyPreset } from './wireguard.ts';

const NAME = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

interface EnrollBody {
  agentName: string;
  agentType: string;
  workspaceId: string;
  ttl: string | number;
  policyPreset: PolicyPreset;
  publicJwk: Record<string, unknown>;
}

const enrollBody = validator<EnrollBody>({
  type: 'object',
  additionalProperties: false,
  required: ['agentName', 'agentType', 'workspaceId', 'ttl', 'policyPreset', 'publicJwk'],
  properties: {
    agentName: { type: 'string', pattern: NAME },
    agentType: { type: 'string', pattern: NAME },
    workspaceId: { type: 'string', pattern: NAME },
    ttl: durationMember(),
    policyPreset: { type: 'string', enum: [...POLICY_PRESETS] },
    publicJwk: { type: 'object', required: [], maxProperties: 16 },
  },
});

const ttlBody = validator<{ ttl: string | number }>({ type: 'object', additionalProperties: false, required: ['ttl'], properties: { ttl: durationMember() } });

const tokenBody = validator<{ scopes: Scope[]; workspace?: string; presets?: PolicyPreset[]; ttl?: string | number }>({
  type: 'object',
  additionalProperties: false,
  required: ['scopes'],
  properties: {
    scopes: { type: 'array', minItems: 1, maxItems: SCOPES.length, items: { type: 'string', enum: [...SCOPES] } },
    workspace: { type: 'string', pattern: NAME, nullable: true },
    presets: { type: 'array', minItems: 1, maxItems: POLICY_PRESETS.length, uniqueItems: true, items: { type: 'string', enum: [...POLICY_PRESETS] }, nullable: true },
    ttl: durationMember({ nullable: true }),
  },
});

const revokeBody = validator<{ id?: string; all?: boolean }>({
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: { id: { type: 'string', maxLength: 128, nullable: true }, all: { type: 'boolean', nullable: true } },
});

const secretBody = validator<{ value: string }>({ type: 'object', additionalProperties: false, required: ['value'], properties: { value: { type: 'string' } } });

export interface Identity {
  readonly peers: Peers;
  readonly replay: SqliteReplayStore;
  readonly auth: AuthDeps;
  readonly routes: Route[];
  /** The encrypted secret store (its master key is loaded on first use). */
  readonly secrets: () => SecretStore;
  /** Removes expired peers (and those of an old revocation epoch) and purges old DPoP proof ids. */
  reap(): Promise<string[]>;
  /** Enrolls a peer from an enrollment body (validated here, as the enroll route does), on behalf of `by`. */
  enroll(body: unknown, by: string): Promise<Enrolled>;
  /** Revokes a peer, lease or token by id, then cancels what the removed peers left pending. */
  revoke(id: string): Promise<string>;
}

export interface IdentityHooks {
  /** Called after peers were revoked or removed, so what they left pending (approvals) can be cancelled. */
  readonly peersRemoved?: () => Promise<unknown>;
}

export function identity(ledger: Ledger, config: GateConfig, paths: HomePaths, hooks: IdentityHooks = {}): Identity {
  const removed = () => hooks.peersRemoved?.();
  const db = ledger.database;
  const cidr = parseCidr(config.identity.overlayCidr);
  const peers = new Peers(ledger, cidr, config.identity.maxTtlMs);
  const replay = new SqliteReplayStore(ledger);
  const auth: AuthDeps = { db, peers, replay, dpopWindowSeconds: config.identity.dpopWindowSeconds };
  const wg = gateWireGuardKey(paths);
  let secrets: SecretStore | undefined;
  const secretStore = () => (secrets ??= new SecretStore(db, loadOrCreateMasterKey(paths)));

  const enroll = async (raw: unknown, by: string): Promise<Enrolled> => {
    const body = enrollBody(raw);
    return peers.enroll({
      name: body.agentName,
      agentType: body.agentType,
      workspace: body.workspaceId,
      preset: body.policyPreset,
      ttlMs: bodyDuration(body.ttl, 'ttl'),
      publicJwk: body.publicJwk,
      by,
    });
  };

  /** The agent itself (DPoP) for its own peer id, or an operator with peers:write (for this peer's workspace). */
  const selfOrOperator = async (ctx: RequestContext, id: string): Promise<string> => {
    const caller = await authenticateCaller(ctx, auth, 'peers:write', () => ({ workspace: peers.get(id).workspace }));
    if (caller.kind === 'operator') return operatorName(caller.operator);
    if (caller.agent.peer.id !== id) throw new LatticeError('FORBIDDEN', 'an agent may renew or delete only itself');
    return caller.agent.peer.id;
  };

  const routes: Route[] = [
    {
      method: 'POST',
      path: '/api/v1/agent-enroll',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        // The credential is checked from the headers before the body is read; then what the body asks for against it.
        const operator = await authenticateOperator(ctx, db, 'enroll', async () => {
          const body = enrollBody(await ctx.readBody());
          return { workspace: body.workspaceId, preset: body.policyPreset };
        });
        const enrolled = await enroll(await ctx.readBody(), operatorName(operator));
        const { peer } = enrolled;
        const wireguardConfig = renderWgQuickConfig({
          privateKey: enrolled.wgPrivateKey,
          address: peer.overlayIp,
          cidr,
          gatePublicKey: wg.publicKey,
          endpoint: config.wireguard.endpoint,
          allowedIps: allowedIpsForPreset(peer.preset, cidr, config.identity.toolServices, []),
        });
        return {
          status: 201,
          body: { peerId: peer.id, overlayIP: peer.overlayIp, enrollmentToken: enrolled.token, wireguardConfig, expiresAt: iso(peer.expiresAt), leaseId: enrolled.leaseId },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/whoami',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer, leaseId } = await authenticateAgent(ctx, auth);
        return { status: 200, body: { ...describePeer(peer), leaseId } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/peers/:id/renew',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        const by = await selfOrOperator(ctx, id);
        const peer = await peers.renew(id, bodyDuration(ttlBody(await ctx.readBody()).ttl, 'ttl'), by);
        return { status: 200, body: describePeer(peer) };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/peers/:id',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        await peers.remove(id, 'peer.deleted', await selfOrOperator(ctx, id));
        await removed();
        return { status: 200, body: { deleted: id } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/peers',
      on: ['admin'],
      handle: () => Promise.resolve({ status: 200, body: { peers: peers.list().map(describePeer) } }),
    },
    {
      method: 'GET',
      path: '/api/v1/peers/rules',
      on: ['admin'],
      handle(ctx) {
        if ((ctx.query.get('format') ?? 'nft') !== 'nft') throw new LatticeError('VALIDATION_FAILED', 'format must be nft');
        const ruleset = renderNftRuleset(
          peers.list().map((p) => ({ id: p.id, overlayIp: p.overlayIp, workspace: p.workspace, preset: p.preset })),
          { cidr, gateAddress: gateAddress(cidr), toolServices: config.identity.toolServices, isolatedAllow: {} },
        );
        return Promise.resolve({ status: 200, body: { format: 'nft', ruleset } });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/peers/:id',
      on: ['admin'],
      handle: (ctx) => Promise.resolve({ status: 200, body: describePeer(peers.get(ctx.params['id'] ?? '')) }),
    },
    {
      method: 'POST',
      path: '/api/v1/tokens',
      on: ['admin'],
      async handle(ctx) {
        const body = tokenBody(await ctx.readBody());
        const ttl = body.ttl ?? null; // the schema lets a member be null as well as absent
        const ttlMs = ttl === null ? null : bodyDuration(ttl, 'ttl');
        // Checked before anything is written: a limit that cannot apply to a scope is refused, never ignored.
        const input = { scopes: body.scopes, workspace: body.workspace ?? null, presets: body.presets ?? null, ttlMs, now: Date.now() };
        const limits = tokenLimits(input);
        let created: ReturnType<typeof createToken> | undefined;
        await ledger.append(
          { type: 'token.created', principal: 'operator', payload: { scopes: [...limits.scopes], workspace: limits.workspace, presets: limits.presets === null ? null : [...limits.presets] } },
          { write: (tx) => void (created = createToken(tx, input)) },
        );
        if (created === undefined) throw new Error('token committed without a record');
        return { status: 201, body: { ...describeToken(created.record), token: created.token } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/tokens',
      on: ['admin'],
      handle: () => Promise.resolve({ status: 200, body: { tokens: listTokens(db).map(describeToken) } }),
    },
    {
      method: 'POST',
      path: '/api/v1/revoke',
      on: ['admin'],
      async handle(ctx) {
        const body = revokeBody(await ctx.readBody());
        if (body.all === true) {
          let epoch = 0;
          await ledger.append(
            { type: 'identities.revoked', principal: 'operator', decision: 'deny', payload: { all: true } },
            {
              write: (tx) => {
                epoch = currentEpoch(tx) + 1;
                tx.prepare(`INSERT INTO gate_state (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(epoch));
              },
            },
          );
          await removed();
          return { status: 200, body: { revoked: 'all', epoch } };
        }
        const id = body.id ?? '';
        const kind = await revokeAndCancel(id);
        return { status: 200, body: { revoked: id, kind } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/secrets/:name',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        authenticateOperator(ctx, db, 'secrets:write');
        const name = ctx.params['name'] ?? '';
        const { value } = secretBody(await ctx.readBody());
        let created = false;
        await ledger.append({ type: 'secret.set', principal: ctx.principal, payload: { name } }, { write: () => void ({ created } = secretStore().set(name, value)) });
        return { status: 200, body: { name, created } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/secrets',
      on: ['admin'],
      handle: () => Promise.resolve({ status: 200, body: { secrets: secretStore().list().map((s) => ({ name: s.name, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) })) } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/secrets/:name',
      on: ['admin'],
      async handle(ctx) {
        const name = ctx.params['name'] ?? '';
        await ledger.append(
          { type: 'secret.removed', principal: 'operator', payload: { name } },
          {
            write: () => {
              if (!secretStore().remove(name)) throw new LatticeError('SECRET_NOT_FOUND', `no secret named ${name}`);
            },
          },
        );
        return { status: 200, body: { removed: name } };
      },
    },
  ];

  /** Ends a peer, lease or token for good; the id's prefix says which. */
  async function revoke(id: string): Promise<string> {
    if (id.startsWith('peer_')) {
      await peers.remove(id, 'peer.revoked', 'operator');
      return 'peer';
    }
    const kind = id.startsWith('lease_') ? 'lease' : id.startsWith('tok_') ? 'token' : undefined;
    if (kind === undefined) throw new LatticeError('VALIDATION_FAILED', 'id must be a peer_, lease_ or tok_ id');
    await ledger.append(
      { type: `${kind}.revoked`, principal: 'operator', decision: 'deny', payload: { id } },
      {
        write: (tx) => {
          const found = kind === 'lease' ? tx.prepare('DELETE FROM leases WHERE id = ?').run(id).changes === 1 : revokeToken(tx, id, Date.now());
          if (!found) throw new LatticeError('NOT_FOUND', `no ${kind} ${id}`);
          recordRevocation(tx, id, kind);
        },
      },
    );
    return kind;
  }

  async function revokeAndCancel(id: string): Promise<string> {
    const kind = await revoke(id);
    await removed();
    return kind;
  }

  routes.push(...delegationRoutes(peers, auth, async () => removed()));

  return {
    peers,
    replay,
    auth,
    routes,
    secrets: secretStore,
    enroll,
    revoke: revokeAndCancel,
    async reap() {
      replay.purge(Date.now());
      const reaped = await peers.reap();
      const epoch = currentEpoch(db);
      for (const peer of peers.list().filter((p) => p.epoch < epoch)) {
        try {
          await peers.remove(peer.id, 'peer.revoked', 'gate');
          reaped.push(peer.id);
        } catch (error) {
          // Removed meanwhile, e.g. with the parent it was delegated by: nothing left to do for it.
          if (!(error instanceof LatticeError && error.code === 'PEER_NOT_FOUND')) throw error;
        }
      }
      if (reaped.length > 0) await removed();
      return reaped;
    },
  };
}

function describePeer(peer: Peer) {
  return {
    peerId: peer.id,
    name: peer.name,
    agentType: peer.agentType,
    workspaceId: peer.workspace,
    policyPreset: peer.preset,
    overlayIP: peer.overlayIp,
    jkt: peer.jkt,
    createdAt: iso(peer.createdAt),
    expiresAt: iso(peer.expiresAt),
  };
}

function describeToken(t: ReturnType<typeof listTokens>[number]) {
  return { id: t.id, scopes: t.scopes, workspace: t.workspace, presets: t.presets, createdAt: iso(t.createdAt), expiresAt: t.expiresAt === null ? null : iso(t.expiresAt), revokedAt: t.revokedAt === null ? null : iso(t.revokedAt) };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
