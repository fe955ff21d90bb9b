/** Action manifests: strict validation that names the field, closed request schemas, stable digests, built-ins. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseManifest } from '../../core/actions/manifest.ts';
import { ActionRegistry } from '../../core/actions/registry.ts';
import { LatticeError } from '../../core/errors.ts';
import { homePaths } from '../../core/home.ts';
import { tempDir } from '../helpers.ts';

const VALID = `
id = "jira.issue.create"
version = "1.2.0"
description = "Create a Jira issue."
risk = "medium"
tags = ["jira"]
cost = 2
timeout = "10s"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
required = ["summary"]
[request.schema.properties.summary]
type = "string"
maxLength = 255
[request.schema.properties.fields]
type = "object"
[request.schema.properties.fields.properties.priority]
type = "string"
[[sinks.http]]
host = "example.atlassian.net"
methods = ["POST"]
[[secrets]]
name = "jira"
header = "authorization"
format = "Basic {secret}"
secret = "JIRA_TOKEN"
[template]
method = "POST"
url = "https://example.atlassian.net/rest/api/3/issue"
`;

const invalid = (message: RegExp) => (e: unknown) => e instanceof LatticeError && e.code === 'MANIFEST_INVALID' && message.test(e.message);

describe('action manifests', () => {
  it('parses a valid manifest and closes every object schema to unknown members', () => {
    const m = parseManifest(VALID, 'jira.toml');
    assert.equal(m.id, 'jira.issue.create');
    assert.equal(m.timeoutMs, 10_000);
    assert.deepEqual(m.sinks.http, [{ host: 'example.atlassian.net', scheme: 'https', methods: ['POST'], ports: [443], allowPrivate: false }]);
    assert.equal(m.validateParams({ summary: 'x', fields: { priority: 'high' } }), true);
    assert.equal(m.validateParams({ summary: 'x', admin: true }), false, 'unknown top-level member');
    assert.equal(m.validateParams({ summary: 'x', fields: { priority: 'high', sneaky: 1 } }), false, 'unknown nested member');
    assert.equal(m.validateParams({}), false, 'missing required member');
  });

  it('has a digest that depends on content, not on formatting', () => {
    const a = parseManifest(VALID, 'a');
    const b = parseManifest(`# a comment\n${VALID.replaceAll('\n', '\n\n')}`, 'b');
    const c = parseManifest(VALID.replace('cost = 2', 'cost = 3'), 'c');
    assert.equal(a.digest, b.digest);
    assert.notEqual(a.digest, c.digest);
    assert.match(a.digest, /^[0-9a-f]{64}$/);
  });

  it('refuses malformed manifests, naming the field', () => {
    const cases: [string, RegExp][] = [
      [VALID.replace('risk = "medium"', 'risk = "extreme"'), /risk must be equal to one of the allowed values/],
      [VALID.replace('id = "jira.issue.create"', 'id = "Jira Issue"'), /id must match pattern/],
      [VALID.replace('version = "1.2.0"', 'version = "latest"'), /version must match pattern/],
      [`surprise = 1\n${VALID}`, /has an unknown key surprise/],
      [VALID.replace('timeout = "10s"', 'timeout = "soon"'), /timeout "soon" is not a duration/],
      [VALID.replace('format = "Basic {secret}"', 'format = "Basic"'), /format must contain \{secret\}/],
      [VALID.replace('type = "string"\nmaxLength = 255', 'type = "strnig"'), /request\.schema is not a valid JSON Schema/],
      [VALID.replace('methods = ["POST"]', 'methods = ["TRACE"]'), /methods/],
      [VALID.replace('host = "example.atlassian.net"', 'host = "evil.com/path"'), /host must match pattern/],
      [VALID.replace(/\[\[sinks\.http\]\][\s\S]*?methods = \["POST"\]\n/, ''), /http effects need at least one \[\[sinks\.http\]\] host/],
      [VALID.replace('builtin = "http.template"', 'builtin = "fs.read"'), /fs\.read and fs\.write effects need \[sinks\.fs\]/],
      [VALID.replace('builtin = "http.template"', 'builtin = "http.template"\neffects = ["fs.write"]'), /a built-in provider declares its own effects/],
      [VALID.replace('builtin = "http.template"', `builtin = "http.template"\ncomponent = "x.wasm"\nsha256 = "${'a'.repeat(64)}"`), /both builtin and component/],
      [VALID.replace('builtin = "http.template"', `component = "../x.wasm"\nsha256 = "${'a'.repeat(64)}"\neffects = ["http"]`), /provider\.component must match pattern/],
      ['not = [toml', /not valid TOML/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseManifest(text, 'm.toml'), invalid(message), message.source);
  });

  it('loads every built-in, and refuses a user manifest that shadows one or a home file that is broken', () => {
    const paths = homePaths(tempDir());
    const registry = ActionRegistry.load(paths, { fsRoot: '/srv/ws', httpHosts: [] });
    assert.deepEqual(
      registry.list().map((a) => a.manifest.id),
      ['echo', 'fs.read', 'fs.write', 'github.issue.create', 'github.pr.create', 'github.pr.merge', 'slack.message.post'],
      'http.request is offered only when hosts are allowed',
    );
    assert.equal(registry.get('fs.write').sinks.fs?.root, '/srv/ws');
    // The fs deny list, pinned: removing an entry must be a deliberate change to this literal.
    const deny = [
      '.git', '.git-credentials', '.env*', '.netrc', '.npmrc', '.pypirc', '.pgpass',
      '.ssh', '.gnupg', '.aws', '.azure', '.docker', '.kube', '**/.config/gcloud', '**/.config/gh', '.lattice',
    ];
    assert.deepEqual(registry.get('fs.read').sinks.fs?.deny, deny);
    assert.deepEqual(registry.get('fs.write').sinks.fs?.deny, deny);
    assert.deepEqual(ActionRegistry.load(paths, { fsRoot: '/srv/ws', httpHosts: ['api.example.com'] }).get('http.request').sinks.http.map((h) => h.host), ['api.example.com']);
    assert.throws(() => registry.add(VALID.replace('id = "jira.issue.create"', 'id = "echo"'), 'x'), (e: unknown) => e instanceof LatticeError && e.code === 'ACTION_CONFLICT');
    registry.add(VALID, 'jira.toml');
    assert.equal(ActionRegistry.load(paths, { fsRoot: '/srv/ws', httpHosts: [] }).get('jira.issue.create').version, '1.2.0', 'an added manifest is installed for the next load');
    mkdirSync(join(paths.root, 'actions'), { recursive: true });
    writeFileSync(join(paths.root, 'actions', 'broken.toml'), VALID.replace('risk = "medium"', 'risk = 5'));
    assert.throws(() => ActionRegistry.load(paths, { fsRoot: '/srv/ws', httpHosts: [] }), invalid(/broken\.toml: risk must be string/));
  });
});
