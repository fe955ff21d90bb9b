/** The policy engine: Cedar decisions, lattice's annotations, denial feedback, hostile contexts, hashing and checks. */
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../core/crypto/index.ts';
import { LatticeError } from '../../core/errors.ts';
import { checkPolicies } from '../../core/policy/check.ts';
import { PolicyEngine, policyHash, type Decision, type PolicyRequest } from '../../core/policy/engine.ts';
import { generateSchema } from '../../core/policy/schema.ts';

const GITHUB = `
@id("merge-small")
@reason("merges are limited to PRs touching fewer than 50 files")
permit(principal in Workspace::"ws-a", action == Action::"github.pr.merge", resource)
when { context.params.files < 50 && context.params.base == "main" };

@id("comment")
permit(principal in Preset::"dev", action == Action::"github.issue.comment", resource);

@id("release-approval")
@reason("releases need a maintainer's approval")
@approval("required")
permit(principal, action == Action::"github.release.create", resource);

@id("release-maintainers")
permit(principal in Preset::"maintainer", action == Action::"github.release.create", resource);

@id("no-force-push")
@reason("force pushes are never allowed")
forbid(principal, action == Action::"github.push", resource)
when { context.params has force && context.params.force == true };

@id("push")
permit(principal, action == Action::"github.push", resource);

@id("no-main-delete")
@reason("the main branch cannot be deleted")
forbid(principal, action == Action::"github.branch.delete", resource) when { context.params.branch == "main" };

permit(principal, action == Action::"github.branch.delete", resource);
`;

const OPS = `
@id("deploy-approval")
@reason("deploys need a human")
@approval("required")
permit(principal in Preset::"dev", action == Action::"deploy.run", resource) unless { context.risk == "high" };

@id("coordinator-only")
permit(principal in Preset::"coordinator", action == Action::"fleet.spawn", resource);
`;

const FILES = [
  { name: 'github.cedar', text: GITHUB },
  { name: 'ops.cedar', text: OPS },
];

const engine = PolicyEngine.load(FILES);

function request(action: string, params: Record<string, unknown> = {}, who: Partial<PolicyRequest> = {}): PolicyRequest {
  return { peerId: 'peer-1', workspace: 'ws-a', preset: 'dev', action, context: { params, risk: 'low' }, ...who };
}

function denied(decision: Decision): Extract<Decision, { decision: 'deny' }> {
  assert.equal(decision.decision, 'deny', JSON.stringify(decision));
  return decision;
}

const refused = (pattern: RegExp) => (error: unknown) => error instanceof LatticeError && error.code === 'POLICY_INVALID' && pattern.test(error.message);

describe('policy engine: decisions', () => {
  it('allows when a plain permit matches', () => {
    assert.deepEqual(engine.decide(request('github.pr.merge', { files: 10, base: 'main' })), { decision: 'allow', policies: ['merge-small'] });
    assert.deepEqual(engine.decide(request('github.issue.comment')), { decision: 'allow', policies: ['comment'] });
  });

  it('holds when only approval permits match', () => {
    assert.deepEqual(engine.decide(request('deploy.run')), { decision: 'hold', policies: ['deploy-approval'], reason: 'deploys need a human' });
    assert.deepEqual(engine.decide(request('github.release.create')), {
      decision: 'hold',
      policies: ['release-approval'],
      reason: "releases need a maintainer's approval",
    });
  });

  it('allows when an approval permit and a plain permit both match', () => {
    const decision = engine.decide(request('github.release.create', {}, { preset: 'maintainer' }));
    assert.deepEqual(decision, { decision: 'allow', policies: ['release-approval', 'release-maintainers'] });
  });

  it('denies by a forbid with its @reason and the forbid conditions that held', () => {
    const decision = denied(engine.decide(request('github.push', { force: true })));
    assert.equal(decision.denialReason, 'CONDITIONS_DENIED');
    assert.deepEqual(decision.policies, ['no-force-push']);
    assert.equal(decision.reason, 'force pushes are never allowed');
    assert.deepEqual(decision.conditions, [
      { policy: 'no-force-push', expression: 'context.params has force', result: true },
      { policy: 'no-force-push', field: 'params.force', operator: 'eq', expected: true, actual: true, result: true },
    ]);
    assert.equal(engine.decide(request('github.push', { force: false })).decision, 'allow');
    assert.equal(engine.decide(request('github.push')).decision, 'allow');
  });

  it('denies when a permit condition fails, naming the field, operator, expected and actual values', () => {
    const decision = denied(engine.decide(request('github.pr.merge', { files: 73, base: 'main' })));
    assert.equal(decision.denialReason, 'CONDITIONS_DENIED');
    assert.deepEqual(decision.policies, ['merge-small']);
    assert.equal(decision.reason, 'merges are limited to PRs touching fewer than 50 files');
    assert.deepEqual(decision.conditions, [
      { policy: 'merge-small', field: 'params.files', operator: 'lt', expected: 50, actual: 73, result: false },
      { policy: 'merge-small', field: 'params.base', operator: 'eq', expected: 'main', actual: 'main', result: true },
    ]);
  });

  it('reports an unless clause as one negated condition', () => {
    const decision = denied(engine.decide({ ...request('deploy.run'), context: { params: {}, risk: 'high' } }));
    assert.equal(decision.denialReason, 'CONDITIONS_DENIED');
    assert.deepEqual(decision.conditions, [{ policy: 'deploy-approval', expression: '!(context.risk == "high")', result: false }]);
  });

  it('says NO_POLICY when no policy names the principal and action', () => {
    for (const decision of [
      engine.decide(request('github.repo.delete')),
      engine.decide(request('fleet.spawn')), // only for principals in Preset::"coordinator"
      engine.decide(request('github.issue.comment', {}, { preset: 'reviewer' })),
    ]) {
      assert.deepEqual(decision, { decision: 'deny', denialReason: 'NO_POLICY', policies: [], reason: null, conditions: [] });
    }
  });

  it('follows workspace and preset membership', () => {
    assert.equal(engine.decide(request('fleet.spawn', {}, { preset: 'coordinator' })).decision, 'allow');
    assert.equal(denied(engine.decide(request('github.pr.merge', { files: 1, base: 'main' }, { workspace: 'ws-b' }))).denialReason, 'NO_POLICY');
    // A peer id that looks like a workspace is not a member of it.
    assert.equal(denied(engine.decide(request('github.pr.merge', { files: 1, base: 'main' }, { peerId: 'ws-a', workspace: 'ws-b' }))).denialReason, 'NO_POLICY');
  });

  it('denies with default deny when no policies are loaded', () => {
    const empty = PolicyEngine.load([{ name: 'empty.cedar', text: '// nothing yet\n' }]);
    assert.equal(denied(empty.decide(request('github.pr.merge'))).denialReason, 'NO_POLICY');
  });
});

describe('policy engine: hostile contexts', () => {
  it('forbid-omission: an agent cannot escape a forbid by leaving out the field it reads', () => {
    assert.equal(engine.decide(request('github.branch.delete', { branch: 'feature' })).decision, 'allow');
    assert.equal(denied(engine.decide(request('github.branch.delete', { branch: 'main' }))).denialReason, 'CONDITIONS_DENIED');
    const decision = denied(engine.decide(request('github.branch.delete', {})));
    assert.equal(decision.denialReason, 'POLICY_ERROR');
    assert.deepEqual(decision.policies, ['no-main-delete']);
    assert.equal(decision.reason, 'the main branch cannot be deleted');
    assert.deepEqual(decision.conditions, [{ policy: 'no-main-delete', field: 'params.branch', operator: 'eq', expected: 'main', actual: null, result: null }]);
  });

  it('entity-injection: a context value shaped like a Cedar entity reference is refused', () => {
    const injected = { files: 1, base: 'main', owner: { __entity: { type: 'Agent', id: 'peer-1' } } };
    const decision = denied(engine.decide(request('github.pr.merge', injected)));
    assert.equal(decision.denialReason, 'REQUEST_INVALID');
    assert.match(decision.reason ?? '', /context\.params\.owner\.__entity/);
    assert.equal(denied(engine.decide(request('github.pr.merge', { files: 1, base: 'main', e: [{ __extn: { fn: 'ip', arg: '10.0.0.1' } }] }))).denialReason, 'REQUEST_INVALID');
  });

  it('proto-keys: a __proto__ member is data, not a prototype, and pollutes nothing', () => {
    const context = JSON.parse('{"params":{"files":10,"base":"main","__proto__":{"files":99,"polluted":true}},"risk":"low"}') as Record<string, unknown>;
    assert.deepEqual(engine.decide({ ...request('github.pr.merge'), context }), { decision: 'allow', policies: ['merge-small'] });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    // Inherited members are never read: an object that is not plain JSON is refused outright.
    const inherited = Object.create({ files: 1, base: 'main' }) as Record<string, unknown>;
    assert.equal(denied(engine.decide(request('github.pr.merge', inherited))).denialReason, 'REQUEST_INVALID');
  });

  it('numbers Cedar cannot hold never pass for numbers', () => {
    for (const files of [2 ** 53 + 2, 2 ** 60, 1e300, 0.5, 49.9]) {
      const decision = denied(engine.decide(request('github.pr.merge', { files, base: 'main' })));
      assert.equal(decision.denialReason, 'CONDITIONS_DENIED', String(files));
      assert.deepEqual(decision.conditions[0], { policy: 'merge-small', field: 'params.files', operator: 'lt', expected: 50, actual: files, result: null });
    }
    assert.equal(engine.decide(request('github.pr.merge', { files: -0, base: 'main' })).decision, 'allow');
  });

  it('refuses contexts Cedar cannot read (deep nesting, lone surrogates, non-JSON values) as REQUEST_INVALID', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i += 1) deep = { a: deep };
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const params of [{ deep }, { s: 'a\uD800b' }, { ['k\uDC00']: 1 }, { n: 10n }, { d: new Date(0) }, { m: new Map() }, { cyclic }, { f: Number.NaN }]) {
      assert.equal(denied(engine.decide(request('github.pr.merge', params as Record<string, unknown>))).denialReason, 'REQUEST_INVALID');
    }
    assert.equal(denied(engine.decide(request('github.pr.merge\uD800'))).denialReason, 'REQUEST_INVALID');
  });

  it('treats null members as absent and survives huge values with bounded feedback', () => {
    assert.equal(engine.decide(request('github.pr.merge', { files: 10, base: 'main', milestone: null, tags: [null, 'x'] })).decision, 'allow');
    const huge = 'x'.repeat(1 << 20);
    const decision = denied(engine.decide(request('github.pr.merge', { files: 10, base: huge })));
    const base = decision.conditions[1];
    assert.ok(base !== undefined && 'actual' in base && typeof base.actual === 'string' && base.actual.length < 400);
    assert.equal(base.result, false);
  });

  it('decides a set that never reads context without it, and still refuses contexts Cedar cannot read', () => {
    const plain = PolicyEngine.load([
      { name: 'plain.cedar', text: '@id("echo")\npermit(principal in Preset::"dev", action == Action::"echo", resource);\n@id("not-x")\nforbid(principal == Agent::"peer-x", action, resource);\n' },
    ]);
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.deepEqual(plain.decide(request('echo', { value })), { decision: 'allow', policies: ['echo'] });
        assert.equal(denied(plain.decide(request('echo', { value }, { peerId: 'peer-x' }))).denialReason, 'CONDITIONS_DENIED');
      }),
      { numRuns: 100 },
    );
    assert.equal(denied(plain.decide(request('echo', { s: 'a\uD800b' }))).denialReason, 'REQUEST_INVALID');
    // A context read nested deep inside a condition is found, and the context decides.
    const nested = PolicyEngine.load([{ name: 'nested.cedar', text: 'permit(principal, action == Action::"echo", resource) when { [1, context.params.n].contains(2) };\n' }]);
    assert.equal(nested.decide(request('echo', { n: 2 })).decision, 'allow');
    assert.equal(denied(nested.decide(request('echo', { n: 3 }))).denialReason, 'CONDITIONS_DENIED');
  });

  it('never throws and decides deterministically for any value an agent can send', () => {
    const anything = fc.anything({ maxDepth: 4, withBigInt: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true, withBoxedValues: true });
    fc.assert(
      fc.property(fc.constantFrom('github.pr.merge', 'github.push', 'github.branch.delete', 'deploy.run'), anything, fc.jsonValue(), (action, params, plan) => {
        const req = { ...request(action), context: { params, plan, risk: 'low' } as Record<string, unknown> };
        const first = engine.decide(req);
        assert.deepEqual(engine.decide(req), first);
      }),
      { numRuns: 300 },
    );
  });
});

describe('policy engine: loading and hashing', () => {
  it('refuses a malformed policy file at load, naming the file and line', () => {
    const bad = { name: 'broken.cedar', text: 'permit(principal, action, resource);\n\npermit(principal, action, resource) when { 1 + };\n' };
    assert.throws(() => PolicyEngine.load([...FILES, bad]), refused(/broken\.cedar:3:\d+: unexpected token/));
  });

  it('refuses annotations that would change meaning silently, templates and duplicate ids', () => {
    const cases: [string, RegExp][] = [
      ['@aproval("required") permit(principal, action, resource);', /unknown annotation @aproval/],
      ['@approval("yes") permit(principal, action, resource);', /@approval must be "required"/],
      ['@approval("required") forbid(principal, action, resource);', /only applies to permit/],
      ['@id("") permit(principal, action, resource);', /@id must not be empty/],
      ['permit(principal == ?principal, action, resource);', /templates/],
      ['@id("comment") permit(principal, action, resource);', /already used at github\.cedar:\d+/],
    ];
    for (const [text, pattern] of cases) assert.throws(() => PolicyEngine.load([...FILES, { name: 'z.cedar', text }]), refused(pattern), text);
    assert.throws(() => PolicyEngine.load([{ name: 'a\n// file: b', text: '' }]), refused(/control character/));
    assert.throws(() => PolicyEngine.load([{ name: 'a', text: '' }, { name: 'a', text: '' }]), refused(/two policy files/));
  });

  it('hashes the documented canonical text, stable under file order and sensitive to any change', () => {
    assert.equal(engine.hash, sha256Hex(`\n// file: github.cedar\n${GITHUB}\n// file: ops.cedar\n${OPS}`));
    assert.equal(policyHash([...FILES].reverse()), engine.hash);
    assert.notEqual(policyHash([FILES[0]!, { name: 'ops.cedar', text: `${OPS} ` }]), engine.hash);
    assert.notEqual(policyHash([FILES[0]!, { name: 'ops2.cedar', text: OPS }]), engine.hash);
    const reloaded = PolicyEngine.load([...FILES].reverse());
    assert.equal(reloaded.hash, engine.hash);
    assert.equal(PolicyEngine.load(FILES), reloaded, 'the same text is not parsed again');
  });

  it('places problems by line and column after non-ASCII text (Cedar counts bytes)', () => {
    const text = '// héllo wörld ✓ 🙂\npermit(principal, action, resource) when { 1 + };\n';
    assert.throws(() => PolicyEngine.load([{ name: 'u.cedar', text }]), refused(/u\.cedar:2:48: unexpected token `}`/));
  });

  it('numbers unnamed policies in source order past ten, and skips commented-out copies when placing them', () => {
    const text = Array.from({ length: 12 }, (_, i) => `// permit(principal == Agent::"p${i}", action == Action::"a", resource);\npermit(principal == Agent::"p${i}", action == Action::"a", resource);`).join('\n');
    const many = PolicyEngine.load([{ name: 'many.cedar', text }]);
    assert.deepEqual(many.decide({ ...request('a'), peerId: 'p10' }), { decision: 'allow', policies: ['many.cedar:policy10'] });
    assert.deepEqual(
      many.policies.map((p) => [p.id, p.line]),
      Array.from({ length: 12 }, (_, i) => [`many.cedar:policy${i}`, 2 * i + 2]),
    );
  });

  it('names a policy without @id after its file and position', () => {
    const decision = engine.decide(request('github.branch.delete', { branch: 'feature' }));
    assert.deepEqual(decision, { decision: 'allow', policies: ['github.cedar:policy7'] });
  });
});

describe('policy check', () => {
  const schema = generateSchema([
    {
      id: 'github.pr.merge',
      paramsJsonSchema: {
        type: 'object',
        properties: { files: { type: 'integer' }, base: { type: 'string' }, draft: { type: 'boolean' }, labels: { type: 'array', items: { type: 'string' } } },
        required: ['files', 'base'],
      },
    },
    { id: 'github.issue.comment', paramsJsonSchema: { type: 'object', properties: { body: { type: 'string' } }, required: ['body'] } },
  ]);
  const errors = (text: string) => checkPolicies(text, schema).filter((p) => p.severity === 'error');

  it('generates the documented Cedar schema from JSON Schemas', () => {
    const generated = generateSchema([
      {
        id: 'x.do',
        paramsJsonSchema: {
          type: 'object',
          required: ['n', 'meta'],
          properties: {
            n: { type: 'integer' },
            ratio: { type: 'number' },
            name: { type: ['string', 'null'] },
            mode: { enum: ['a', 'b'] },
            tags: { type: 'array', items: { type: 'string' } },
            meta: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
            either: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
            loose: { type: 'array' },
          },
        },
      },
    ]);
    assert.deepEqual(JSON.parse(JSON.stringify(generated)), {
      '': {
        entityTypes: {
          Agent: {
            memberOfTypes: ['Workspace', 'Preset'],
            shape: { type: 'Record', attributes: { delegated: { type: 'Boolean' }, parent: { type: 'Entity', name: 'Agent', required: false } } },
          },
          Workspace: {},
          Preset: {},
          Gate: {},
        },
        actions: {
          'x.do': {
            appliesTo: {
              principalTypes: ['Agent'],
              resourceTypes: ['Gate'],
              context: {
                type: 'Record',
                attributes: {
                  params: {
                    type: 'Record',
                    attributes: {
                      n: { type: 'Long' },
                      ratio: { type: 'Long', required: false },
                      name: { type: 'String', required: false },
                      mode: { type: 'String', required: false },
                      tags: { type: 'Set', element: { type: 'String' }, required: false },
                      meta: { type: 'Record', attributes: { ok: { type: 'Boolean' } } },
                    },
                  },
                  risk: { type: 'String' },
                  dataAccessed: { type: 'Set', element: { type: 'String' } },
                },
              },
            },
          },
        },
      },
    });
    assert.throws(() => generateSchema([{ id: 'a', paramsJsonSchema: {} }, { id: 'a', paramsJsonSchema: {} }]), refused(/registered twice/));
  });

  it('accepts policies that match the registered actions', () => {
    assert.deepEqual(
      errors(`@id("ok")
permit(principal in Workspace::"ws-a", action == Action::"github.pr.merge", resource)
when { context.params.files < 50 && context.risk == "low" && !(context.params has labels && context.params.labels.contains("wip")) };
permit(principal in Preset::"dev", action == Action::"github.issue.comment", resource)
when { context.params has draft || context.params.body like "*lgtm*" };`).filter((p) => p.policy === 'ok'),
      [],
    );
    assert.deepEqual(checkPolicies('permit(principal in Preset::"dev", action == Action::"github.issue.comment", resource);', schema), []);
  });

  it('refuses a policy naming a missing action', () => {
    const problems = errors('@id("close") permit(principal, action == Action::"github.pr.close", resource);');
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.policy, 'close');
    assert.match(problems[0]?.message ?? '', /unrecognized action `Action::"github\.pr\.close"`/);
  });

  it('refuses a policy naming a missing params field, with its line', () => {
    const problems = errors('@id("typo")\npermit(principal, action == Action::"github.pr.merge", resource)\nwhen { context.params.filez < 50 };');
    assert.equal(problems.length, 1);
    assert.deepEqual([problems[0]?.file, problems[0]?.policy, problems[0]?.line], ['policy.cedar', 'typo', 3]);
    assert.match(problems[0]?.message ?? '', /params\.filez.*not found.*did you mean `files`/);
  });

  it('refuses reading an optional field without `has`, and reading the plan', () => {
    assert.match(errors('permit(principal, action == Action::"github.pr.merge", resource) when { context.params.draft };')[0]?.message ?? '', /optional attribute/);
    assert.equal(errors('permit(principal, action, resource) when { context.plan.steps == 1 };').length > 0, true);
  });

  it('reports parse problems without a schema', () => {
    const problems = checkPolicies([{ name: 'p.cedar', text: '\n\nforbid(principal, action resource);' }]);
    assert.equal(problems.length, 1);
    assert.deepEqual([problems[0]?.file, problems[0]?.line], ['p.cedar', 3]);
  });
});
