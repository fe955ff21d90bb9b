/**
 * Request bodies are attacker-controlled: each is checked against a JSON Schema (ajv, compiled once) before a
 * handler sees it, and refused with VALIDATION_FAILED naming the first offending field. Unknown members are
 * refused unless a schema allows them.
 */
import type { ErrorObject, JSONSchemaType, Options, ValidateFunction } from 'ajv';
import { LatticeError, describeError } from '../errors.ts';
import { parseDuration } from '../time.ts';
import { compileOwn } from './compile-own.ts';

const own: OwnCompilation[] = [];

/** One of lattice's own schemas and the ajv options it is compiled with. */
export interface OwnCompilation {
  readonly schema: object;
  readonly options: Options;
}

/**
 * Every schema lattice itself defines, with its options (compiledOnUse registers them): test/core/schemas.test.ts
 * checks them against the meta-schema and scripts/precompile-schemas.ts turns them into code at build time.
 */
export const OWN_COMPILATIONS: readonly OwnCompilation[] = own;

/** What identifies a compilation: the options and the schema, as JSON (the same at build time and at run time). */
export function compilationKey(schema: object, options: Options): string {
  return `${JSON.stringify(options)}\n${JSON.stringify(schema)}`;
}

/**
 * One of lattice's own schemas, made into a validator on its first use (core/server/compile-own.ts: compiled
 * when running from source, code generated at build time in the bundles). Compiling every module's schemas as it
 * loaded cost each CLI start ~0.3 s. These schemas are constants of the code, so they are not checked against the
 * JSON Schema meta-schema at run time (that cost every process another ~40 ms): the test suite checks each one
 * instead. Schemas from outside (a manifest's request schema) are compiled elsewhere, with that check.
 */
export function compiledOnUse<T>(schema: object, options: Options = {}): ValidateFunction<T> {
  own.push({ schema, options });
  let compiled: ValidateFunction<T> | undefined;
  const get = () => {
    compiled ??= compileOwn(compilationKey(schema, options), schema, options) as ValidateFunction<T>;
    return compiled;
  };
  const validate = ((data: unknown) => get()(data)) as ValidateFunction<T>;
  Object.defineProperty(validate, 'errors', { get: () => get().errors });
  return validate;
}

export function validator<T>(schema: JSONSchemaType<T>): (body: unknown) => T {
  // Union types (`type: ['integer', 'string']`) are how a member accepts two forms, e.g. durationMember().
  const validate = compiledOnUse<T>(schema, { allErrors: false, allowUnionTypes: true });
  return (body) => {
    if (body === undefined) throw new LatticeError('VALIDATION_FAILED', 'the request needs a JSON body');
    if (validate(body)) return body;
    throw new LatticeError('VALIDATION_FAILED', describeAjvError(validate.errors?.[0], null));
  };
}

/** Longest duration a body may give as a number of seconds (the string form allows nine digits as well). */
const MAX_DURATION_SECONDS = 999_999_999;

/**
 * The schema of a duration member of a body: a whole number of seconds, or a string `90s`, `30m`, `1h`, `7d`.
 * Read it with bodyDuration. A fresh object each time: ajv writes into a schema's `type` array, so one shared
 * object could make every schema using it accept what one of them allows.
 */
export function durationMember(): DurationSchema;
export function durationMember(options: { nullable: true }): DurationSchema & { nullable: true };
export function durationMember(options: { nullable?: true } = {}): DurationSchema {
  const range = { minimum: 1, maximum: MAX_DURATION_SECONDS, maxLength: 16 };
  // "null" written out: left to `nullable`, ajv would add it to the schema when compiling it, changing the JSON the
  // build's precompiled validators are looked up by.
  if (options.nullable === true) return { type: ['integer', 'string', 'null'], nullable: true, ...range } as unknown as DurationSchema;
  return { type: ['integer', 'string'], ...range };
}

type DurationSchema = { type: ['integer', 'string']; minimum: number; maximum: number; maxLength: number };

/** A duration member of a body (seconds as a number, or `90s`, `30m`, `1h`, `7d`) in ms; a malformed one is VALIDATION_FAILED. */
export function bodyDuration(value: string | number, field: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1 || value > MAX_DURATION_SECONDS) {
      throw new LatticeError('VALIDATION_FAILED', `${field} ${value} is not a whole number of seconds from 1 to ${MAX_DURATION_SECONDS}; or give a duration like 90s, 30m, 1h or 7d`);
    }
    return value * 1000;
  }
  try {
    return parseDuration(value, field);
  } catch (error) {
    throw new LatticeError('VALIDATION_FAILED', describeError(error));
  }
}

/**
 * "<field> <what is wrong>" for ajv's first error: the field as a dotted path under `root` (the body itself when
 * root is null), an unknown member named (quoted and cut short: it is attacker-chosen).
 */
export function describeAjvError(e: ErrorObject | undefined, root: string | null): string {
  const path = e === undefined ? '' : e.instancePath.slice(1).replaceAll('/', '.');
  const field = path === '' ? (root ?? 'body') : root === null ? path : `${root}.${path}`;
  const types: unknown = e?.keyword === 'type' ? e.params['type'] : undefined;
  const detail =
    e?.keyword === 'additionalProperties'
      ? `has an unknown member ${JSON.stringify(String(e.params['additionalProperty']).slice(0, 64))}`
      : Array.isArray(types)
        ? `must be ${types.join(' or ')}`
        : (e?.message ?? 'is invalid');
  return `${field} ${detail}`;
}
