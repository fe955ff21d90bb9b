/**
 * A Cedar schema (JSON form) generated from the registered actions' params JSON Schemas, so `lattice policy check`
 * can refuse a policy that names an action or a params field that does not exist, or reads an optional field
 * without `has`.
 *
 * Shape: entity types `Agent` (member of `Workspace` and `Preset`), `Workspace`, `Preset`, `Gate`; each action
 * applies to principal `Agent` and resource `Gate` with context `{ params: <record>, risk: String, dataAccessed:
 * Set<String> }` (the data labels the agent says it has read, e.g. `secrets`, for policies on what may follow).
 *
 * Mapping (JSON Schema → Cedar): string → String; integer → Long; number → Long (Cedar has no floats; at run time a
 * fractional value arrives as a String and any numeric comparison on it errors, which denies, see context.ts);
 * boolean → Boolean; array → Set of its `items`; object → Record of its `properties`, with members not in
 * `required` optional. A `type` list is accepted when it is one type plus "null". A member whose schema cannot be
 * mapped (no type, anyOf/oneOf/$ref, an array without items, nesting deeper than 32) is left out of the record, so
 * a policy that reads it is refused, never validated against a guess.
 *
 * `plan` is not declared: Cedar's schema cannot say "any JSON" (open records, `additionalAttributes`, are an
 * experimental feature the published cedar-wasm does not enable). The engine still passes `plan` at run time, but
 * a policy that reads it cannot pass validation against this schema.
 */
import type { SchemaJson, Type, TypeOfAttribute } from '@cedar-policy/cedar-wasm/nodejs';
import type { ActionRegistry } from '../actions/registry.ts';
import { LatticeError } from '../errors.ts';
import { ENTITY } from './request.ts';

export interface ActionSchemaSource {
  readonly id: string;
  /** The action's params JSON Schema (an object schema). */
  readonly paramsJsonSchema: object;
}

const MAX_DEPTH = 32;

function own(schema: object, key: string): unknown {
  return Object.hasOwn(schema, key) ? (schema as Record<string, unknown>)[key] : undefined;
}

function typeName(schema: object): string | null {
  const declared = own(schema, 'type');
  if (typeof declared === 'string') return declared;
  if (Array.isArray(declared)) {
    const types = declared.filter((t) => t !== 'null');
    return types.length === 1 && typeof types[0] === 'string' ? types[0] : null;
  }
  const values = own(schema, 'enum');
  if (Array.isArray(values) && values.length > 0 && values.every((v) => typeof v === 'string')) return 'string';
  return null;
}

function recordType(schema: object, depth: number): Type<string> {
  const properties = own(schema, 'properties');
  const requiredList = own(schema, 'required');
  const required = new Set(Array.isArray(requiredList) ? requiredList.filter((r) => typeof r === 'string') : []);
  // No prototype: a property named `__proto__` must stay an ordinary member.
  const attributes = Object.create(null) as Record<string, TypeOfAttribute<string>>;
  if (typeof properties === 'object' && properties !== null) {
    for (const name of Object.keys(properties)) {
      const member = own(properties, name);
      if (typeof member !== 'object' || member === null) continue;
      const type = cedarType(member, depth + 1);
      if (type === null) continue;
      attributes[name] = required.has(name) ? type : { ...type, required: false };
    }
  }
  return { type: 'Record', attributes };
}

function cedarType(schema: object, depth: number): Type<string> | null {
  if (depth > MAX_DEPTH) return null;
  switch (typeName(schema)) {
    case 'string':
      return { type: 'String' };
    case 'integer':
    case 'number':
      return { type: 'Long' };
    case 'boolean':
      return { type: 'Boolean' };
    case 'array': {
      const items = own(schema, 'items');
      if (typeof items !== 'object' || items === null || Array.isArray(items)) return null;
      const element = cedarType(items, depth + 1);
      return element === null ? null : { type: 'Set', element };
    }
    case 'object':
      return recordType(schema, depth);
    case null:
    default:
      return null;
  }
}

/** The Cedar schema (JSON form, empty namespace) for these actions. Throws INVALID_ARGUMENT for a repeated id. */
export function generateSchema(actions: readonly ActionSchemaSource[]): SchemaJson<string> {
  const declared = Object.create(null) as SchemaJson<string>[string]['actions'];
  for (const action of actions) {
    if (Object.hasOwn(declared, action.id)) throw new LatticeError('POLICY_INVALID', `action ${JSON.stringify(action.id)} is registered twice`);
    const params = typeName(action.paramsJsonSchema) === 'object' ? recordType(action.paramsJsonSchema, 0) : { type: 'Record' as const, attributes: {} };
    declared[action.id] = {
      appliesTo: {
        principalTypes: [ENTITY.agent],
        resourceTypes: [ENTITY.gate],
        context: { type: 'Record', attributes: { params, risk: { type: 'String' }, dataAccessed: { type: 'Set', element: { type: 'String' } } } },
      },
    };
  }
  return {
    '': {
      entityTypes: {
        [ENTITY.agent]: {
          memberOfTypes: [ENTITY.workspace, ENTITY.preset],
          shape: { type: 'Record', attributes: { delegated: { type: 'Boolean' }, parent: { type: 'Entity', name: ENTITY.agent, required: false } } },
        },
        [ENTITY.workspace]: {},
        [ENTITY.preset]: {},
        [ENTITY.gate]: {},
      },
      actions: declared,
    },
  };
}

/** The schema for every action a registry holds (what `lattice policy check` and `apply` validate against). */
export function actionSchema(registry: ActionRegistry): SchemaJson<string> {
  return generateSchema(registry.list().map(({ manifest }) => ({ id: manifest.id, paramsJsonSchema: manifest.requestSchema })));
}
