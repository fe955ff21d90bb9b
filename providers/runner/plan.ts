/**
 * A component's plan is untrusted output: its JSON must have exactly the shape of lattice's effects before the
 * gate looks at it (the sink check then decides what it may touch). The host, not the provider, computes what it
 * can compute itself: a write's size and SHA-256.
 */
import { type ValidateFunction } from 'ajv';
import { sha256Hex } from '../../core/crypto/index.ts';
import type { Effect } from '../../core/pipeline/effects.ts';
import { compiledOnUse } from '../../core/server/validate.ts';

/** Effects one plan may contain. */
export const MAX_EFFECTS = 16;

const str = (maxLength: number) => ({ type: 'string', maxLength }) as const;

const PLAN_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['effects'],
  properties: {
    effects: {
      type: 'array',
      maxItems: MAX_EFFECTS,
      items: {
        type: 'object',
        required: ['kind'],
        properties: { kind: { type: 'string', enum: ['http', 'fs.read', 'fs.write'] } },
        discriminator: { propertyName: 'kind' },
        oneOf: [
          {
            additionalProperties: false,
            required: ['kind', 'method', 'url', 'headers', 'body', 'secrets'],
            properties: {
              kind: { const: 'http' },
              method: { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] },
              url: str(8192),
              headers: { type: 'object', maxProperties: 64, additionalProperties: str(8192) },
              body: { anyOf: [{ type: 'string' }, { type: 'null' }] },
              secrets: { type: 'array', maxItems: 16, items: str(64) },
            },
          },
          { additionalProperties: false, required: ['kind', 'path'], properties: { kind: { const: 'fs.read' }, path: str(4096) } },
          { additionalProperties: false, required: ['kind', 'path', 'content'], properties: { kind: { const: 'fs.write' }, path: str(4096), content: { type: 'string' } } },
        ],
      },
    },
  },
} as const;

const validatePlan: ValidateFunction = compiledOnUse(PLAN_SCHEMA, { discriminator: true, allErrors: false });

/** A planned effect as the schema allows it; a write is completed by the host. */
type PlannedEffect = Exclude<Effect, { kind: 'fs.write' }> | { kind: 'fs.write'; path: string; content: string };

/** The effects of a plan, or a message saying what is wrong with it. */
export function parsePlan(text: string): { ok: true; effects: Effect[] } | { ok: false; message: string } {
  let plan: unknown;
  try {
    plan = JSON.parse(text);
  } catch {
    return { ok: false, message: 'the plan is not JSON' }; // the parser's message would echo provider output
  }
  if (!validatePlan(plan)) {
    const e = validatePlan.errors?.[0];
    return { ok: false, message: `the plan does not have lattice's shape: ${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}`.trim() };
  }
  const planned = (plan as { effects: PlannedEffect[] }).effects;
  const effects = planned.map((e): Effect => (e.kind === 'fs.write' ? { ...e, bytes: Buffer.byteLength(e.content), sha256: sha256Hex(e.content) } : e));
  return { ok: true, effects };
}
