/**
 * lattice's own JSON schemas are compiled without ajv's run-time check against the JSON Schema meta-schema
 * (core/server/validate.ts, compiledOnUse): this is that check, for every schema the modules register.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { OWN_SCHEMAS } from '../../core/server/validate.ts';
// Every module that defines schemas, so that each registers them.
import '../../core/actions/manifest.ts';
import '../../core/actions/routes.ts';
import '../../core/config/config.ts';
import '../../core/gate/admin-routes.ts';
import '../../core/identity/delegations.ts';
import '../../core/identity/routes.ts';
import '../../core/pipeline/reports.ts';
import '../../core/pipeline/routes.ts';
import '../../core/policy/cases.ts';
import '../../providers/runner/plan.ts';
import '../../sandbox/profile.ts';

/** The options any of lattice's compilers use that add keywords, and the meta-schema check turned on. */
const checker = () => new Ajv({ strict: true, discriminator: true, allowUnionTypes: true, allErrors: true, validateSchema: true });

test('every schema lattice defines is valid against the meta-schema and compiles in strict mode', () => {
  // 17 validator() call sites plus the config, manifest, policy case, provider plan and profile schemas.
  assert.ok(OWN_SCHEMAS.length >= 22, `only ${OWN_SCHEMAS.length} schemas registered`);
  for (const schema of OWN_SCHEMAS) {
    const ajv = checker();
    assert.equal(ajv.validateSchema(schema), true, `${JSON.stringify(schema).slice(0, 200)}: ${ajv.errorsText()}`);
    assert.doesNotThrow(() => ajv.compile(schema));
  }
});

test('the check refuses a schema with a misspelt type, and strict compilation an unknown keyword', () => {
  const ajv = checker();
  assert.equal(ajv.validateSchema({ type: 'object', properties: { a: { type: 'strng' } } }), false);
  assert.throws(() => checker().compile({ type: 'object', propertys: {} }), /strict mode: unknown keyword: "propertys"/);
});
