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
  const validate = compiledOnUse<T>(schema, { allErrors: false });
  return (body) => {
    if (body === undefined) throw new LatticeError('VALIDATION_FAILED', 'the request needs a JSON body');
    if (validate(body)) return body;
    throw new LatticeError('VALIDATION_FAILED', describeAjvError(validate.errors?.[0], null));
  };
}

/** A duration member of a body (`90s`, `30m`, `1h`, `7d`) in ms; a malformed one is VALIDATION_FAILED. */
export function bodyDuration(text: string, field: string): number {
  try {
    return parseDuration(text, field);
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
  const detail = e?.keyword === 'additionalProperties' ? `has an unknown member ${JSON.stringify(String(e.params['additionalProperty']).slice(0, 64))}` : (e?.message ?? 'is invalid');
  return `${field} ${detail}`;
}
