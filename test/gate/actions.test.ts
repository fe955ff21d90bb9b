/** The actions API against a real gate: agents read manifests, the operator installs one without a restart. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, latticeJson, tempDir } from '../helpers.ts';
import { asAgent, call, codeOf, exited, gate, newAgent, startGate } from './harness.ts';

const MANIFEST = `
id = "jira.issue.create"
version = "1.0.0"
description = "Create a Jira issue."
risk = "medium"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
required = ["summary"]
[request.schema.properties.summary]
type = "string"
[[sinks.http]]
host = "example.atlassian.net"
methods = ["POST"]
[template]
method = "POST"
url = "https://example.atlassian.net/rest/api/3/issue"
`;

function registered(home: string): string[] {
  return latticeJson<{ events: { action: string }[] }>(['audit', '--home', home, '--type', 'action.registered', '--limit', '100']).json.events.map((e) => e.action);
}

describe('actions API', () => {
  it('lists and shows manifests to an authenticated agent, and refuses anyone else', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const list = await asAgent(g.gate, agent, 'GET', '/api/v1/actions');
    assert.equal(list.status, 200);
    const ids = (list.body['actions'] as { id: string }[]).map((a) => a.id);
    assert.ok(ids.includes('echo') && ids.includes('github.pr.merge'));
    const one = await asAgent(g.gate, agent, 'GET', '/api/v1/actions/github.issue.create');
    assert.equal(one.body['risk'], 'medium');
    assert.deepEqual(one.body['secrets'], [{ name: 'github', header: 'authorization', secret: 'GITHUB_TOKEN' }]);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'GET', '/api/v1/actions/no.such.action')), 'ACTION_NOT_FOUND');
    assert.equal(codeOf(await call({ socketPath: g.gate }, 'GET', '/api/v1/actions')), 'UNAUTHENTICATED');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('records every manifest digest once, installs a new manifest at once, and records a changed one after a restart', async () => {
    const g = await gate();
    const builtins = registered(g.home);
    assert.ok(builtins.includes('echo') && builtins.includes('slack.message.post'));
    const file = join(tempDir(), 'jira.toml');
    writeFileSync(file, MANIFEST);
    const add = latticeJson<{ id: string; registered: boolean }>(['actions', 'add', file, '--allow-unsigned', '--home', g.home]);
    assert.equal(add.status, 0, add.stderr);
    assert.equal(add.json.registered, true);
    const agent = await newAgent(g.admin);
    assert.equal((await asAgent(g.gate, agent, 'GET', '/api/v1/actions/jira.issue.create')).status, 200, 'registered without a restart');
    assert.equal(registered(g.home).filter((id) => id === 'jira.issue.create').length, 1);

    // A restart with nothing changed records nothing new; a changed manifest is recorded again.
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    await exited(g.child);
    const unchanged = await startGate(g.home);
    assert.equal(registered(g.home).length, builtins.length + 1);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    await exited(unchanged.child);
    writeFileSync(join(g.home, 'actions', 'jira.issue.create.toml'), MANIFEST.replace('version = "1.0.0"', 'version = "1.1.0"'));
    await startGate(g.home);
    assert.equal(registered(g.home).filter((id) => id === 'jira.issue.create').length, 2);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('refuses to start with a broken manifest in the home, naming the file', () => {
    const home = join(tempDir(), 'home');
    mkdirSync(join(home, 'actions'), { recursive: true });
    writeFileSync(join(home, 'actions', 'bad.toml'), MANIFEST.replace('risk = "medium"', 'risk = "extreme"'));
    const up = lattice(['up', '--home', home, '--yes']);
    assert.notEqual(up.status, 0);
    assert.match(up.stderr, /bad\.toml: risk must be equal to one of the allowed values/);
  });
});
