/**
 * The actions API: agents and operators list and read manifests; the operator installs one through the admin
 * socket, which takes effect at once (no restart) and is recorded with its digest.
 */
import { authenticateCaller, type AuthDeps } from '../identity/auth.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { RequestContext, Route } from '../server/http.ts';
import { validator } from '../server/validate.ts';
import { describeAction, type ActionRegistry } from './registry.ts';

const addBody = validator<{ manifest: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['manifest'],
  properties: { manifest: { type: 'string', maxLength: 256 * 1024 } },
});

export function actionRoutes(registry: ActionRegistry, ledger: Ledger, auth: AuthDeps): Route[] {
  /** Any authenticated caller: an agent (DPoP), the admin socket, or a token with audit:read. */
  const authenticate = (ctx: RequestContext) => authenticateCaller(ctx, auth, 'audit:read');
  return [
    {
      method: 'GET',
      path: '/api/v1/actions',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        await authenticate(ctx);
        return { status: 200, body: { actions: registry.list().map((a) => describeAction(a.manifest, a.source)) } };
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
        const manifest = registry.add(addBody(ctx.body).manifest, 'the submitted manifest');
        await registry.recordChanges(ledger);
        return { status: 201, body: describeAction(manifest, 'file') };
      },
    },
  ];
}
