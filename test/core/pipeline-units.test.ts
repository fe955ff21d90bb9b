/** The pipeline's pure parts and its transactional guards: grants, budgets and sink checks. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseManifest } from '../../core/actions/manifest.ts';
import { ActionRegistry } from '../../core/actions/registry.ts';
import { homePaths } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { Budgets } from '../../core/pipeline/budgets.ts';
import type { Effect } from '../../core/pipeline/effects.ts';
import { assertConsumed, consumeGrant, issueGrant, type GrantBinding } from '../../core/pipeline/grant.ts';
import { checkSinks } from '../../core/pipeline/sinks.ts';
import { tempDir } from '../helpers.ts';

function ledger(): Ledger {
  return Ledger.open(homePaths(join(tempDir(), 'home')), { checkpointIntervalMs: 0 });
}

const binding: GrantBinding = { requestId: 'req_1', peerId: 'peer_1', action: 'echo', requestHash: 'a'.repeat(64), planSha256: 'b'.repeat(64) };

describe('one-shot grants', () => {
  it('is consumed once; a second use of the grant, or another grant for the same request, is GRANT_CONSUMED', async () => {
    const l = ledger();
    const now = Date.now();
    const grant = await issueGrant(l.keys.active, binding, now);
    consumeGrant(l.database, l.keys.publicKeys, grant, binding, now);
    assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, grant, binding, now), { code: 'GRANT_CONSUMED' });
    const another = await issueGrant(l.keys.active, binding, now);
    assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, another, binding, now), { code: 'GRANT_CONSUMED' });
    l.close();
  });

  it('refuses a grant that is forged, bound to something else, or expired, and consumes nothing', async () => {
    const l = ledger();
    const now = Date.now();
    const grant = await issueGrant(l.keys.active, binding, now);
    const forged = { ...grant, body: grant.body.replace('peer_1', 'peer_2') };
    assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, forged, { ...binding, peerId: 'peer_2' }, now), { code: 'GRANT_INVALID' });
    for (const field of ['requestId', 'peerId', 'action', 'requestHash', 'planSha256'] as const) {
      assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, grant, { ...binding, [field]: 'c'.repeat(64) }, now), { code: 'GRANT_INVALID' }, field);
    }
    assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, grant, binding, now + 61_000), { code: 'GRANT_INVALID' });
    assert.equal(l.database.prepare('SELECT count(*) FROM grants').pluck().get(), 0);
    consumeGrant(l.database, l.keys.publicKeys, grant, binding, now); // and the genuine one still works
    l.close();
  });

  it('assertConsumed refuses a grant that was never consumed and accepts one that was', async () => {
    const l = ledger();
    const now = Date.now();
    const grant = await issueGrant(l.keys.active, binding, now);
    assert.throws(() => assertConsumed(l.database, grant.id), { code: 'GRANT_INVALID' });
    consumeGrant(l.database, l.keys.publicKeys, grant, binding, now);
    assertConsumed(l.database, grant.id);
    l.close();
  });

  it('checks the signature of a grant it did not issue itself, and an issued grant cannot be changed', async () => {
    const l = ledger();
    const now = Date.now();
    const grant = await issueGrant(l.keys.active, binding, now);
    assert.throws(() => Object.assign(grant, { body: grant.body.replace('peer_1', 'peer_2') }), TypeError);
    const copy = { ...grant }; // the same bytes in another object: verified, and genuine
    const badSignature = { ...grant, signature: (await issueGrant(l.keys.active, binding, now)).signature };
    assert.throws(() => consumeGrant(l.database, l.keys.publicKeys, badSignature, binding, now), { code: 'GRANT_INVALID' });
    consumeGrant(l.database, l.keys.publicKeys, copy, binding, now);
    l.close();
  });
});

describe('budgets', () => {
  it('reserves calls and cost per window and refuses past the limit; other subjects and later windows are free', () => {
    const l = ledger();
    Budgets.set(l.database, { scope: 'preset', subject: 'sandboxed', calls: 2, cost: 5, windowMs: 60_000 }, 0);
    const budgets = new Budgets(l.database, [{ scope: 'agent', subject: 'peer_1', calls: null, cost: 3, windowMs: 60_000, source: 'config' }]);
    const who = { peerId: 'peer_1', ancestors: [], workspace: 'ws', preset: 'sandboxed' };
    const t = 120_000;
    budgets.reserve(l.database, who, 2, t);
    assert.deepEqual(budgets.check(who, 2, t).ok, false, 'cost 2 + 2 > 3 for the agent');
    budgets.reserve(l.database, who, 1, t);
    assert.throws(() => budgets.reserve(l.database, who, 0, t), /allows 2 call/);
    assert.equal(budgets.check({ ...who, peerId: 'peer_2', preset: 'coordinator' }, 1, t).ok, true);
    assert.equal(budgets.check(who, 1, t + 60_000).ok, true, 'a new window');
    assert.throws(() => new Budgets(l.database, [{ scope: 'agent', subject: 'x', calls: null, cost: null, windowMs: 60_000, source: 'config' }]), { code: 'INVALID_ARGUMENT' });
    l.close();
  });

  it('budget-delegation-bypass: an agent budget is charged for every call of the identities below it, and limits them', () => {
    const l = ledger();
    const budgets = new Budgets(l.database, [{ scope: 'agent', subject: 'peer_root', calls: 2, cost: null, windowMs: 60_000, source: 'config' }]);
    const root = { peerId: 'peer_root', ancestors: [], workspace: 'ws', preset: 'sandboxed' };
    const child = { ...root, peerId: 'peer_child', ancestors: ['peer_root'] };
    const grandchild = { ...root, peerId: 'peer_grandchild', ancestors: ['peer_child', 'peer_root'] };
    budgets.reserve(l.database, child, 0, 0);
    budgets.reserve(l.database, grandchild, 0, 0);
    for (const who of [root, child, grandchild]) {
      assert.throws(() => budgets.reserve(l.database, who, 0, 0), /the agent budget for peer_root.* allows 2 call\(s\) per window; 2 used/);
    }
    const checked = budgets.check(grandchild, 0, 0);
    assert.match(checked.ok ? '' : checked.message, /peer_root \(which delegated this identity\)/);
    const stranger = { ...root, peerId: 'peer_other' };
    assert.equal(budgets.check(stranger, 0, 0).ok, true, 'another agent is not charged');
    assert.equal(budgets.check({ ...stranger, ancestors: ['peer_elsewhere'] }, 0, 0).ok, true, 'nor one delegated by another agent');
    l.close();
  });
});

describe('sink checks', () => {
  const http = parseManifest(
    `id = "t.http"\nversion = "1.0.0"\ndescription = "t"\nrisk = "low"\n[provider]\nbuiltin = "http.request"\n[request.schema]\ntype = "object"\n[[sinks.http]]\nhost = "*.example.com"\nmethods = ["POST"]\n[[secrets]]\nname = "k"\nheader = "authorization"\nformat = "Bearer {secret}"\nsecret = "K"\n`,
    'test',
  );
  const fs = parseManifest(
    `id = "t.fs"\nversion = "1.0.0"\ndescription = "t"\nrisk = "low"\n[provider]\nbuiltin = "fs.write"\n[request.schema]\ntype = "object"\n[sinks.fs]\nroot = "/srv"\nallow = ["src/**", "docs/*.md"]\ndeny = [".git", "**/.env*"]\n`,
    'test',
  );
  const post = (url: string, headers: Record<string, string> = {}, secrets: string[] = ['k']): Effect => ({ kind: 'http', method: 'POST', url, headers, body: null, secrets });
  const write = (path: string): Effect => ({ kind: 'fs.write', path, content: '', bytes: 0, sha256: 'x' });

  it('allows what a sink names and refuses everything else', () => {
    assert.equal(checkSinks(http, [post('https://api.example.com/x')]).ok, true);
    for (const url of ['https://example.com/x', 'http://api.example.com/x', 'https://api.example.com:8443/x', 'https://evil.com/?api.example.com', 'https://user:pw@api.example.com/', 'https://api.example.com.evil.com/', 'not a url']) {
      assert.equal(checkSinks(http, [post(url)]).ok, false, url);
    }
    assert.equal(checkSinks(http, [{ ...post('https://api.example.com/'), method: 'GET' } as Effect]).ok, false, 'method');
    for (const headers of [{ authorization: 'Bearer mine' }, { host: 'x' }, { 'proxy-authorization': 'x' }, { 'x-a': 'a\r\nb: c' }, { 'X-Upper': 'x' }]) {
      assert.equal(checkSinks(http, [post('https://api.example.com/', headers)]).ok, false, JSON.stringify(headers));
    }
    assert.equal(checkSinks(http, [post('https://api.example.com/', { 'x-trace': 'ok' })]).ok, true);
    assert.equal(checkSinks(http, [post('https://api.example.com/', {}, ['undeclared'])]).ok, false);
  });

  it('url-dot-segment: refuses a URL the parser would rewrite before sending (policy saw another path); one sent as written is allowed', () => {
    const rewritten = [
      'https://api.example.com/public/../admin', 'https://api.example.com/public/..', 'https://api.example.com/a/./b', 'https://api.example.com/a/.',
      'https://api.example.com/public/%2e%2E/admin', 'https://api.example.com/public/.%2e/admin', 'https://api.example.com/public/%2E./admin',
      'https://api.example.com/public/%2e/admin', 'https://api.example.com/public\\..\\admin', 'https://api.example.com/public/.\t./admin',
      'https://api.example.com/public/.\n./admin', ' https://api.example.com/x', 'https:api.example.com/x', 'https:/api.example.com/x',
    ];
    for (const url of rewritten) assert.equal(checkSinks(http, [post(url)]).ok, false, JSON.stringify(url));
    for (const url of ['https://api.example.com/a/.../b', 'https://api.example.com/a/..b/.c', 'https://api.example.com/.well-known/x', 'https://api.example.com/a?next=../b', 'https://api.example.com/']) {
      assert.equal(checkSinks(http, [post(url)]).ok, true, url);
      assert.equal(new URL(url).href, url, 'the allowed URLs are sent exactly as written');
    }
  });

  it('template-encoded-slash: a template action refuses %2F or %5C in its URL path (a param adding a segment); in the query, or for http.request, it passes', () => {
    const template = parseManifest(
      `id = "t.tpl"\nversion = "1.0.0"\ndescription = "t"\nrisk = "low"\n[provider]\nbuiltin = "http.template"\n[request.schema]\ntype = "object"\n[[sinks.http]]\nhost = "api.example.com"\nmethods = ["POST"]\n[template]\nmethod = "POST"\nurl = "https://api.example.com/repos/{params.owner}/{params.repo}/issues"\n`,
      'test',
    );
    const planned = (url: string) => checkSinks(template, [post(url, {}, [])]);
    for (const path of ['/repos/o/a%2Fb/issues', '/repos/o/a%2fb/issues', '/repos/a%5Cb/r/issues', '/repos/o/..%2F..%2Fadmin/issues']) {
      const check = planned(`https://api.example.com${path}`);
      assert.equal(check.ok, false, path);
      assert.match(check.ok ? '' : check.message, /encoded slash/, path);
    }
    assert.equal(planned('https://api.example.com/repos/o/r/issues').ok, true);
    assert.equal(planned('https://api.example.com/repos/o/r/issues?labels=a%2Fb').ok, true, 'the query is not a path');
    assert.equal(checkSinks(http, [post('https://api.example.com/projects/group%2Fproject')]).ok, true, 'http.request: the agent wrote the whole URL and policy saw it');
  });

  describe('the built-in fs deny list', () => {
    const builtin = ActionRegistry.load(homePaths(tempDir()), { fsRoot: '/srv/ws', httpHosts: [] });
    const denied = (path: string) => checkSinks(builtin.get('fs.read'), [{ kind: 'fs.read', path }]).ok === false;
    const legitimate = ['README.md', 'src/environment.ts', '.gitignore', '.github/workflows/ci.yml', 'docs/ssh.md', 'aws/notes.md', 'config/gh.md', '.config/nvim/init.lua'];

    it('nested-credential-file: refuses credential files and stores at any depth; ordinary files are allowed', () => {
      const credentials = [
        '.env', 'app/.env', 'services/api/.env.production', 'pkg/.envrc', 'a/.git/config', 'vendor/lib/.git/hooks/pre-commit',
        '.git-credentials', 'home/.git-credentials', 'home/.netrc', 'home/.npmrc', 'home/.pypirc', 'home/.pgpass',
        'home/.ssh/id_ed25519', 'x/.gnupg/private-keys-v1.d/k.key', 'x/.aws/credentials', '.aws/config', 'x/.azure/msal_token_cache.json',
        'x/.docker/config.json', 'x/.kube/config', 'x/.config/gcloud/credentials.db', '.config/gh/hosts.yml', 'x/.lattice/config.toml',
      ];
      for (const path of credentials) assert.equal(denied(path), true, path);
      for (const path of legitimate) assert.equal(denied(path), false, path);
    });

    it('deny-case-variant: refuses a denied name in any case (a case-insensitive directory opens the same file)', () => {
      for (const path of ['.ENV', 'app/.Env.local', '.GIT/config', 'x/.SSH/id_rsa', 'x/.Aws/credentials', '.CONFIG/GH/hosts.yml', 'X/.NETRC']) {
        assert.equal(denied(path), true, path);
      }
      for (const path of legitimate) assert.equal(denied(path.toUpperCase()), false, path.toUpperCase());
    });

    it('matches allow globs case-sensitively (an allow never reaches another directory)', () => {
      assert.equal(checkSinks(fs, [write('SRC/a.ts')]).ok, false);
      assert.equal(checkSinks(fs, [write('src/a.ts')]).ok, true);
    });
  });

  it('keeps fs paths relative, normalized, allowed and not denied', () => {
    for (const ok of ['src/a.ts', 'src/deep/b.ts', 'docs/readme.md']) assert.equal(checkSinks(fs, [write(ok)]).ok, true, ok);
    for (const bad of ['../x', 'src/../../x', '/etc/passwd', 'src//a', 'src/./a', 'other/a', 'docs/deep/a.md', '.git/config', 'src/.env', 'src\\a', 'src/a\0', '']) {
      assert.equal(checkSinks(fs, [write(bad)]).ok, false, JSON.stringify(bad));
    }
  });
});
