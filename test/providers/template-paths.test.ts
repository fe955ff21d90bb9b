/**
 * The built-in templates' path params cannot change which resource the URL names: each param placed in the path
 * stays one segment that the URL parser keeps. The built-in component fills the template; the params' schema and
 * the sink check (which the host applies again) refuse what would not.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ActionRegistry } from '../../core/actions/registry.ts';
import type { JsonObject } from '../../core/canonical.ts';
import { loadConfig } from '../../core/config/config.ts';
import { homePaths } from '../../core/home.ts';
import type { Effect } from '../../core/pipeline/effects.ts';
import { checkSinks } from '../../core/pipeline/sinks.ts';
import { providerRunner } from '../../providers/index.ts';
import { ROOT, tempDir } from '../helpers.ts';

const GITHUB = ['github.issue.create', 'github.pr.create', 'github.pr.merge'] as const;
/** Valid params for each GitHub action but owner and repo. */
const REST: Record<(typeof GITHUB)[number], JsonObject> = {
  'github.issue.create': { title: 't' },
  'github.pr.create': { title: 't', head: 'feature', base: 'main' },
  'github.pr.merge': { number: 7 },
};

describe('built-in templates: path params', () => {
  const paths = homePaths(tempDir());
  const { config } = loadConfig(paths, undefined);
  const runner = providerRunner({ workerUrl: new URL(`file://${join(ROOT, 'dist/provider-worker.mjs')}`), builtinDir: join(ROOT, 'providers/components') }, { paths, keys: null, config });
  const registry = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: [] });
  after(() => runner.close());

  /** The component's plan, made without the schema check, as an operator's manifest without a pattern would. */
  async function planned(action: string, params: JsonObject): Promise<Effect[]> {
    const manifest = registry.get(action);
    const plan = await runner.resolve(manifest).plan(manifest, params);
    assert.ok(plan.ok, `${action} plans ${JSON.stringify(params)}`);
    return plan.value;
  }

  it('template-dotdot-repo: refuses a repo of . or .. (the URL would name another repository); .github and a..b are repositories', async () => {
    for (const action of GITHUB) {
      const manifest = registry.get(action);
      for (const repo of ['.', '..']) {
        assert.equal(manifest.validateParams({ owner: 'acme', repo, ...REST[action] }), false, `${action}: the schema refuses repo ${repo}`);
        const effects = await planned(action, { owner: 'acme', repo, ...REST[action] });
        assert.match(String((effects[0] as { url: string }).url), /\/acme\/\.\.?\//, 'the component leaves dots as they are');
        const check = checkSinks(manifest, effects);
        assert.equal(check.ok, false, `${action}: the sink check refuses repo ${repo}`);
        assert.match(check.ok ? '' : check.message, /\. or \.\. segment/);
      }
      for (const repo of ['.github', 'a..b', '...', 'lattice']) {
        const params = { owner: 'acme', repo, ...REST[action] };
        assert.equal(manifest.validateParams(params), true, `${action}: repo ${repo}`);
        const effects = await planned(action, params);
        assert.equal(checkSinks(manifest, effects).ok, true, `${action}: repo ${repo}`);
        const url = new URL((effects[0] as { url: string }).url);
        assert.equal(url.pathname.split('/')[3], repo, 'the URL names the repository the params name');
      }
    }
  });

  it('template-encoded-slash: a slash or backslash in a path param (filled in as %2F, %5C) is refused; in the body it is text', async () => {
    const manifest = registry.get('github.issue.create');
    for (const repo of ['a/b', '../../admin', 'a\\b']) {
      const check = checkSinks(manifest, await planned('github.issue.create', { owner: 'acme', repo, title: 't' }));
      assert.equal(check.ok, false, repo);
      assert.match(check.ok ? '' : check.message, /encoded slash/, repo);
    }
    const body = await planned('github.issue.create', { owner: 'acme', repo: 'r', title: 'see a/b and ../c' });
    assert.equal(checkSinks(manifest, body).ok, true);
  });

  it('slack.message.post: the channel goes in the body, never the URL', async () => {
    const manifest = registry.get('slack.message.post');
    assert.equal(manifest.validateParams({ channel: '../admin', text: 'x' }), false, 'the channel pattern has no dot or slash');
    const effects = await planned('slack.message.post', { channel: '#general', text: 'hello' });
    assert.equal((effects[0] as { url: string }).url, 'https://slack.com/api/chat.postMessage');
    assert.equal(checkSinks(manifest, effects).ok, true);
  });
});
