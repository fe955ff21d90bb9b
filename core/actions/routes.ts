/**
 * The actions API: agents and operators list and read manifests; the operator installs one through the admin
 * socket, which takes effect at once (no restart) and is recorded with its digest and who signed it (install.ts).
 */
import type { HomePaths } from '../home.ts';
import { authenticateCaller, type AuthDeps } from '../identity/auth.ts';
import type { Peer } from '../identity/peers.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { RequestContext, Route } from '../server/http.ts';
import { validator } from '../server/validate.ts';
import { installManifest } from './install.ts';
import type { ActionManifest } from './manifest.ts';
import { describeAction, type ActionRegistry } from './registry.ts';

const addBody = validator<{ manifest: string; signature?: string; allowUnsigned?: boolean; file?: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['manifest'],
  properties: {
    manifest: { type: 'string', maxLength: 256 * 1024 },
    signature: { type: 'string', maxLength: 4096, nullable: true },
    allowUnsigned: { type: 'boolean', nullable: true },
    file: { type: 'string', maxLength: 1024, nullable: true },
  },
});

/** Whether an agent may ever use an action (decide.ts `usability`), for agents' listings. */
export type Usability = (peer: Peer, manifest: ActionManifest) => { usable: boolean; needsApproval: boolean };

export function actionRoutes(registry: ActionRegistry, ledger: Ledger, paths: HomePaths, auth: AuthDeps, usability: Usability): Route[] {
  /** Any authenticated caller: an agent (DPoP), the admin socket, or a token with audit:read. */
  const authenticate = (ctx: RequestContext) => authenticateCaller(ctx, auth, 'audit:read');
  return [
    {
      method: 'GET',
      path: '/api/v1/actions',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        const caller = await authenticate(ctx);
        const peer = caller.kind === 'agent' ? caller.agent.peer : null;
        // An agent also learns which actions it may use at all (by policy scope and its capabilities).
        const actions = registry.list().map((a) => ({ ...describeAction(a.manifest, a.source), ...(peer !== null && usability(peer, a.manifest)) }));
        return { status: 200, body: { actions } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/actions/:id',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        await authenticate(ctx);
        const entry = registry.list().find((a) => a.manifest.id === ctx.params['id']);
        return { status: 200, body: describeAction(registry.get(ctx.params['id'] ?? ''), entry?.source ?? 'file') };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/actions',
      on: ['admin'],
      async handle(ctx) {
        ctx.principal = 'operator';
        const body = addBody(await ctx.readBody());
        const { manifest, trust, seq } = await installManifest(registry, ledger, paths, {
          text: body.manifest,
          signature: body.signature ?? null,
          allowUnsigned: body.allowUnsigned === true,
          source: body.file ?? 'the submitted manifest',
        });
        return { status: 201, body: { ...describeAction(manifest, 'file'), publisher: trust.publisher, allowUnsigned: trust.allowUnsigned, seq } };
      },
    },
  ];
}
