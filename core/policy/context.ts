/**
 * The request context (attacker-controlled JSON in `params` and `plan`) → Cedar's JSON value form.
 *
 * Cedar reads `{"__entity": …}` and `{"__extn": …}` in a context as an entity reference or an extension value, so
 * an agent could send `{"owner": {"__entity": {"type": "Agent", "id": "<peer>"}}}` and satisfy
 * `context.params.owner == principal`. The conversion therefore refuses, never passes through:
 * - any member named `__entity`, `__extn` or `__expr`, at any depth;
 * - nesting deeper than MAX_CONTEXT_DEPTH (Cedar's JSON reader stops at 128 levels with an exception);
 * - strings and member names that are not well-formed Unicode (lone surrogates break Cedar's JSON reader);
 * - values JSON cannot hold (bigint, functions, symbols, NaN, ±Infinity, Dates, Maps, class instances).
 *
 * And maps, deterministically:
 * - a safe integer → a Cedar Long (-0 → 0);
 * - any other finite number (fractions, magnitudes beyond 2^53, which JSON.parse has already rounded) → its
 *   `String(n)` text. Cedar has no floats; a string makes `<`/`>` on it an evaluation error (a permit does not
 *   apply; a forbid that errors denies, see engine.ts) and `== 5` false, so it can never pass for a number;
 * - `null` members and array elements are omitted (Cedar has no null; absent is JSON Schema's reading of an
 *   optional member); `undefined` likewise;
 * - arrays → Cedar sets (order and duplicates do not survive; Cedar has no lists).
 * Members named `__proto__` are kept as ordinary data (the output objects have no prototype).
 */
import type { CedarValueJson, Context } from '@cedar-policy/cedar-wasm/nodejs';

/** Levels of objects/arrays below the context record itself. */
export const MAX_CONTEXT_DEPTH = 64;

const RESERVED_KEYS = new Set(['__entity', '__extn', '__expr']);

export type ContextConversion = { readonly ok: true; readonly value: Context } | { readonly ok: false; readonly message: string };

/** Thrown inside the walk only; toCedarContext turns it into `{ ok: false }`. */
class Refusal extends Error {}

/** A path for messages; attacker-chosen names are quoted and cut short. */
function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]{0,63}$/u.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.slice(0, 64))}]`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Converts one value; `undefined` means "omit". */
function convert(value: unknown, path: string, depth: number): CedarValueJson | undefined {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new Refusal(`${path} is not well-formed Unicode`);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (Number.isSafeInteger(value)) return value === 0 ? 0 : value;
      if (Number.isFinite(value)) return String(value);
      throw new Refusal(`${path} is not a finite number`);
    case 'undefined':
      return undefined;
    case 'object':
      break;
    case 'bigint':
    case 'symbol':
    case 'function':
      throw new Refusal(`${path} is not a JSON value`);
  }
  if (value === null) return undefined;
  if (depth >= MAX_CONTEXT_DEPTH) throw new Refusal(`${path} is nested deeper than ${MAX_CONTEXT_DEPTH} levels`);
  if (Array.isArray(value)) {
    const out: CedarValueJson[] = [];
    value.forEach((element: unknown, index) => {
      const converted = convert(element, child(path, index), depth + 1);
      if (converted !== undefined) out.push(converted);
    });
    return out;
  }
  if (!isPlainObject(value)) throw new Refusal(`${path} is not a JSON value`);
  return convertRecord(value, path, depth);
}

function convertRecord(value: Record<string, unknown>, path: string, depth: number): Record<string, CedarValueJson> {
  const out = Object.create(null) as Record<string, CedarValueJson>;
  for (const key of Object.keys(value)) {
    const at = child(path, key);
    if (RESERVED_KEYS.has(key)) throw new Refusal(`${at}: the member name ${key} is reserved by Cedar`);
    if (!key.isWellFormed()) throw new Refusal(`${path} has a member name that is not well-formed Unicode`);
    const converted = convert(value[key], at, depth + 1);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

/** The context in Cedar's form, or why it cannot be represented faithfully. */
export function toCedarContext(context: Record<string, unknown>): ContextConversion {
  if (!isPlainObject(context)) return { ok: false, message: 'context is not a JSON object' };
  try {
    return { ok: true, value: convertRecord(context, 'context', 0) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, message: error.message };
    throw error;
  }
}
