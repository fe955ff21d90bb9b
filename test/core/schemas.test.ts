/**
 * lattice's own JSON schemas are compiled without ajv's run-time check against the JSON Schema meta-schema
 * (core/server/validate.ts, compiledOnUse): this is that check, for every schema the modules register. The builds
 * turn the same schemas into code (scripts/precompile-schemas.ts); the generated validators are checked here to be
 * complete and to judge as the run-time compiler does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { build } from 'esbuild';
import { compileOwn } from '../../core/server/compile-own.ts';
import { compilationKey } from '../../core/server/validate.ts';
import { OWN_COMPILATIONS } from '../../scripts/own-schemas.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** The options any of lattice's compilers use that add keywords, and the meta-schema check turned on. */
const checker = () => new Ajv({ strict: true, discriminator: true, allowUnionTypes: true, allErrors: true, validateSchema: true });

test('every schema lattice defines is valid against the meta-schema and compiles in strict mode', () => {
  // 17 validator() call sites plus the config, manifest, policy case, provider plan and profile schemas.
  assert.ok(OWN_COMPILATIONS.length >= 22, `only ${OWN_COMPILATIONS.length} schemas registered`);
  for (const { schema } of OWN_COMPILATIONS) {
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

/** The source files (outside tests) that register schemas: those calling compiledOnUse or validator. */
function registeringModules(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && /\b(compiledOnUse|validator)[<(]/.test(readFileSync(path, 'utf8'))) found.push(relative(ROOT, path));
    }
  };
  for (const dir of ['cli', 'core', 'sandbox', 'providers/runner', 'providers/effects', 'mcp', 'sdk']) walk(join(ROOT, dir));
  return found.filter((f) => f !== 'core/server/validate.ts').sort();
}

test('scripts/own-schemas.ts lists every module that registers a schema, so the builds precompile them all', () => {
  const listed = [...readFileSync(join(ROOT, 'scripts', 'own-schemas.ts'), 'utf8').matchAll(/^import '\.\.\/(.+)';$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(listed, registeringModules());
});

test('the generated validators cover every schema and judge documents as the run-time compiler does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-schemas-'));
  try {
    const out = join(dir, 'compile-own.mjs');
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/precompile-schemas.ts', out], { cwd: ROOT, stdio: 'pipe' });
    // Bundled as the builds bundle it (the generated code requires ajv's run-time helpers).
    const bundle = join(dir, 'bundle.mjs');
    await build({ entryPoints: [out], outfile: bundle, bundle: true, format: 'esm', platform: 'node', logLevel: 'silent', absWorkingDir: ROOT, nodePaths: [join(ROOT, 'node_modules')] });
    const generated = (await import(pathToFileURL(bundle).href)) as { compileOwn: (key: string) => ValidateFunction };
    for (const { schema, options } of OWN_COMPILATIONS) {
      const key = compilationKey(schema, options);
      const built = generated.compileOwn(key);
      const compiled = compileOwn(key, schema, options);
      // An empty object and a wrong type: every schema refuses at least the second, and names the same errors.
      for (const doc of [{}, 42, { unknown: true }]) {
        assert.equal(built(doc), compiled(doc), `${key.slice(0, 120)} on ${JSON.stringify(doc)}`);
        assert.deepEqual(built.errors, compiled.errors);
      }
    }
    assert.throws(() => generated.compileOwn(compilationKey({ type: 'string' }, {})), /no validator for a schema it uses/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
