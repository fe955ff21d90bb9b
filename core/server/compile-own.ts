/**
 * Compiles one of lattice's own schemas (strict; not checked against the meta-schema at run time, the test suite
 * does that). This is the version that runs from source. The builds replace this module with code generated from
 * every own schema by ajv's standalone generator (scripts/precompile-schemas.ts, swapped in by
 * scripts/precompiled-plugin.mjs), whose compileOwn only looks `key` up: the shipped CLI carries no schema compiler
 * for its own schemas and spends no start-up time compiling them (the sandbox profile's schema alone cost
 * `lattice sandbox` ~60 ms, ajv's compiler another ~20 ms to load).
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';

const compilers = new Map<string, Ajv>();

export function compileOwn(_key: string, schema: object, options: Options): ValidateFunction {
  const name = JSON.stringify(options);
  let ajv = compilers.get(name);
  if (ajv === undefined) compilers.set(name, (ajv = new Ajv({ strict: true, ...options, validateSchema: false })));
  return ajv.compile(schema);
}
