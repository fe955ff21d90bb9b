/**
 * Webhooks from a real gate to a real HTTP receiver on loopback: signatures that the receiver's own check accepts
 * (and refuses when the body or the secret is wrong), each event exactly once across a restart, retries with
 * backoff after 500s under one webhook-id, dead letters in `lattice status` and sent again by `lattice webhooks
 * retry`, the Slack format of approval.requested with a command that approves, event filters, and refusals to start.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { lattice, latticeJson, tempDir } from '../helpers.ts';
import { asAgent, asOperator, exited, gate, newAgent, startGate, type Agent, type Reply, type TestGate } from './harness.ts';
import { Receiver, verifySignature } from './webhook-receiver.ts';

// A receiver left listening by a failed test would keep the file's process alive (the harness kills the gates).
const receivers: Receiver[] = [];
after(() => Promise.all(receivers.map((r) => r.close())));

async function listen(port?: number): Promise<Receiver> {
  const r = await Receiver.start(SECRET, port);
  receivers.push(r);
  return r;
}

const SECRET = `whsec_${Buffer.from('lattice webhook test key, 32 by').toString('base64')}`;
const FAST = 'backoff = "50ms"\nmax_backoff = "400ms"';

function webhook(name: string, url: string, extra = ''): string {
  return `[[webhooks]]\nname = "${name}"\nurl = "${url}"\nsecret = "${SECRET}"\n${extra}\n`;
}

function execute(g: TestGate, agent: Agent, action: string, params: unknown): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params }));
}

async function echo(g: TestGate, agent: Agent, message: string): Promise<number> {
  const reply = await execute(g, agent, 'echo', { message });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return Number(reply.body['auditEventId']);
}

async function stop(g: TestGate): Promise<void> {
  g.child.kill('SIGTERM');
  assert.equal(await exited(g.child), 0);
}

interface WebhookState {
  name: string;
  origin: string;
  pending: number;
  delivered: number;
  dead: number;
  lastError: { seq: number; error: string } | null;
  deadLetters: { seq: number; messageId: string; attempts: number; lastError: string }[];
}

function counts(w: WebhookState | undefined) {
  return { pending: w?.pending, delivered: w?.delivered, dead: w?.dead, lastError: w?.lastError };
}

/** The webhook's counts once its outcomes are recorded (they commit just after the receiver answered). */
async function settled(g: TestGate, name: string, expected: ReturnType<typeof counts>): Promise<void> {
  let actual = counts((await webhookStates(g))[name]);
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && JSON.stringify(actual) !== JSON.stringify(expected); ) {
    await new Promise((r) => setTimeout(r, 50));
    actual = counts((await webhookStates(g))[name]);
  }
  assert.deepEqual(actual, expected, `webhook ${name}`);
}

async function webhookStates(g: TestGate): Promise<Record<string, WebhookState>> {
  const reply = await asOperator(g, 'GET', '/api/v1/admin/status');
  return Object.fromEntries((reply.body['webhooks'] as WebhookState[]).map((w) => [w.name, w]));
}

describe('webhooks', () => {
  it('signs every delivery so the receiver\'s own check passes, and that check fails for a changed body or another secret', async () => {
    const receiver = await listen();
    const g = await gate(webhook('audit', receiver.url('/hooks/lattice'), 'events = ["action.executed"]'));
    const agent = await newAgent(g.admin);
    const seq = await echo(g, agent, 'signed');
    await receiver.until(() => receiver.accepted().length === 1, 'the delivery');
    const [d] = receiver.deliveries;
    assert.ok(d?.verified, 'the receiver verified the signature');
    assert.equal(d.path, '/hooks/lattice');
    assert.match(d.id, new RegExp(`^msg_[A-Za-z0-9_-]{22}_audit_${seq}$`));
    assert.ok(Math.abs(d.timestamp - Date.now() / 1000) < 60);
    assert.match(d.signature, /^v1,[A-Za-z0-9+/]{43}=$/);
    // The body is the ledger's event: the receiver can hold it against `lattice audit`.
    const [event] = latticeJson<{ events: { seq: number; hash: string; payload: Record<string, unknown> }[] }>(['audit', '--home', g.home, '--type', 'action.executed']).json.events;
    assert.deepEqual({ type: d.json.type, seq: d.json.data?.seq, hash: d.json.data?.hash, ledgerType: d.json.data?.ledgerType }, { type: 'action.executed', seq, hash: event?.hash, ledgerType: 'action.executed' });
    assert.deepEqual((d.json.data as unknown as { payload: unknown }).payload, event?.payload);
    // The same check refuses what was not signed as it stands.
    const timestamp = String(d.timestamp);
    assert.equal(await verifySignature(SECRET, d.id, timestamp, d.body, d.signature), true);
    const tampered = d.body.replace(`"seq":${seq}`, `"seq":${seq + 1}`);
    assert.notEqual(tampered, d.body);
    assert.equal(await verifySignature(SECRET, d.id, timestamp, tampered, d.signature), false);
    assert.equal(await verifySignature(SECRET, `${d.id}0`, timestamp, d.body, d.signature), false);
    assert.equal(await verifySignature(`whsec_${Buffer.from('another key of thirty-two bytes!').toString('base64')}`, d.id, timestamp, d.body, d.signature), false);
    await stop(g);
    await receiver.close();
  });

  it('delivers each event exactly once across a restart, including those the receiver missed while it was down', async () => {
    let receiver = await listen();
    const port = receiver.port;
    const g = await gate(webhook('once', receiver.url('/once'), `events = ["action.executed"]\n${FAST}\nmax_attempts = 100`));
    const agent = await newAgent(g.admin);
    const seqs = [await echo(g, agent, 'one'), await echo(g, agent, 'two')];
    await receiver.until(() => receiver.accepted().length === 2, 'the first two deliveries');
    await receiver.close(); // the receiver goes down: the next events fail and wait in the outbox
    seqs.push(await echo(g, agent, 'three'), await echo(g, agent, 'four'), await echo(g, agent, 'five'));
    await new Promise((r) => setTimeout(r, 300));
    await stop(g);
    const db = new Database(join(g.home, 'lattice.db'), { readonly: true });
    const rows = db.prepare(`SELECT seq, state, attempts FROM webhook_outbox WHERE webhook = 'once' ORDER BY seq`).all() as { seq: number; state: string; attempts: number }[];
    db.close();
    assert.deepEqual(rows.map((r) => [r.seq, r.state]), seqs.map((s, i) => [s, i < 2 ? 'delivered' : 'pending']));
    assert.ok((rows[2]?.attempts ?? 0) >= 1, 'the first missed event was tried while the receiver was down');

    const previous = receiver.deliveries;
    receiver = await listen(port);
    const restarted = { ...g, ...(await startGate(g.home, '--config', g.config)) };
    seqs.push(await echo(restarted, agent, 'six'));
    await receiver.until(() => receiver.accepted().length === 4, 'the missed and the new deliveries');
    await new Promise((r) => setTimeout(r, 500)); // room for a duplicate to show up
    const accepted = [...previous, ...receiver.deliveries].filter((d) => d.verified && d.status === 200);
    assert.deepEqual(accepted.map((d) => d.json.data?.seq), seqs, 'every event once, in seq order');
    assert.equal(new Set(accepted.map((d) => d.id)).size, seqs.length, 'every webhook-id once');
    assert.equal(receiver.deliveries.length, 4, 'nothing was sent twice after the restart');
    await settled(restarted, 'once', { pending: 0, delivered: 6, dead: 0, lastError: null });
    await stop(restarted);
    await receiver.close();
  });

  it('marks nothing for a delivery a stop cut off, and sends it again after the restart under the same webhook-id', async () => {
    const receiver = await listen();
    let release: (() => void) | undefined;
    receiver.answer = () => new Promise((resolve) => (release = () => resolve({ status: 200 }))); // answers only when told
    const g = await gate(webhook('held', receiver.url('/held'), `events = ["action.executed"]\n${FAST}`));
    const agent = await newAgent(g.admin);
    const seq = await echo(g, agent, 'held');
    await receiver.until(() => receiver.deliveries.length === 1, 'the held delivery');
    const stopping = Date.now();
    await stop(g); // gives the attempt a moment, then aborts it
    assert.ok(Date.now() - stopping < 10_000, 'the stop did not wait for the held answer');
    release?.();
    const db = new Database(join(g.home, 'lattice.db'), { readonly: true });
    assert.deepEqual(db.prepare(`SELECT seq, state, attempts, last_error AS lastError FROM webhook_outbox WHERE webhook = 'held'`).all(), [{ seq, state: 'pending', attempts: 0, lastError: null }]);
    db.close();
    receiver.answer = () => ({ status: 200 });
    const restarted = { ...g, ...(await startGate(g.home, '--config', g.config)) };
    await receiver.until(() => receiver.deliveries.length === 2, 'the delivery after the restart');
    assert.deepEqual(receiver.deliveries.map((d) => d.id), [receiver.deliveries[0]?.id, receiver.deliveries[0]?.id]);
    await settled(restarted, 'held', { pending: 0, delivered: 1, dead: 0, lastError: null });
    await stop(restarted);
  });

  it('retries after 500s with growing waits under one webhook-id, and a receiver that always fails ends in dead letters that retry sends again', async () => {
    const receiver = await listen();
    let doomedAnswers = 500;
    receiver.answer = (d, attempt) => {
      if (d.path === '/flaky') return attempt <= 3 ? { status: 500, body: 'busy' } : { status: 204 };
      return { status: doomedAnswers, body: doomedAnswers === 500 ? 'no thanks\nat all' : '' };
    };
    const only = 'events = ["action.executed"]';
    const g = await gate(webhook('flaky', receiver.url('/flaky'), `${only}\n${FAST}\nmax_attempts = 5`) + webhook('doomed', receiver.url('/doomed'), `${only}\n${FAST}\nmax_attempts = 3`));
    const agent = await newAgent(g.admin);
    const seq = await echo(g, agent, 'eventually');
    await receiver.until(() => receiver.accepted('/flaky').length === 1 && receiver.deliveries.filter((d) => d.path === '/doomed').length === 3, 'the retries');
    const flaky = receiver.deliveries.filter((d) => d.path === '/flaky');
    assert.deepEqual(flaky.map((d) => d.status), [500, 500, 500, 204]);
    assert.equal(new Set(flaky.map((d) => d.id)).size, 1, 'the same webhook-id on every attempt');
    assert.ok(flaky.every((d) => d.verified && d.json.data?.seq === seq));
    // Waits of 50, 100 and 200 ms between attempts (timers may fire late, never early).
    const waits = flaky.slice(1).map((d, i) => d.at - flaky[i]!.at);
    waits.forEach((wait, i) => assert.ok(wait >= 50 * 2 ** i - 5, `wait ${i + 1} was ${wait} ms: ${JSON.stringify(waits)}`));

    await settled(g, 'flaky', { pending: 0, delivered: 1, dead: 0, lastError: null });
    await settled(g, 'doomed', { pending: 0, delivered: 0, dead: 1, lastError: { seq, error: 'HTTP 500: no thanks at all' } });
    const doomed = receiver.deliveries.filter((d) => d.path === '/doomed');
    assert.equal(doomed.length, 3, 'no attempt after the last one allowed');

    const status = latticeJson<{ webhooks: WebhookState[]; health: Record<string, { ok: boolean; detail: string }> }>(['status', '--home', g.home]).json;
    const dead = status.webhooks.find((w) => w.name === 'doomed');
    assert.deepEqual(
      { pending: dead?.pending, delivered: dead?.delivered, dead: dead?.dead, lastError: dead?.lastError, deadLetters: dead?.deadLetters },
      { pending: 0, delivered: 0, dead: 1, lastError: { seq, error: 'HTTP 500: no thanks at all' }, deadLetters: [{ seq, messageId: doomed[0]?.id, attempts: 3, lastError: 'HTTP 500: no thanks at all' }] },
    );
    assert.equal(dead?.origin, `http://127.0.0.1:${receiver.port}`);
    assert.deepEqual(status.health['webhooks'], { ok: false, detail: 'dead letters: doomed 1 (lattice webhooks retry NAME)' });
    const human = lattice(['status', '--home', g.home]);
    assert.match(human.stdout, /dead letters of doomed \(newest 1 of 1; send them again with `lattice webhooks retry doomed`\)/);
    assert.match(human.stdout, new RegExp(`${seq}\\s+${doomed[0]?.id}\\s+3\\s+HTTP 500: no thanks at all`));

    doomedAnswers = 200;
    const retried = latticeJson<{ name: string; retried: number }>(['webhooks', 'retry', 'doomed', '--home', g.home]);
    assert.deepEqual(retried.json, { name: 'doomed', retried: 1 });
    await receiver.until(() => receiver.accepted('/doomed').length === 1, 'the retried delivery');
    assert.equal(receiver.accepted('/doomed')[0]?.id, doomed[0]?.id, 'a retried message keeps its webhook-id');
    const unknown = latticeJson<{ error: { code: string; message: string } }>(['webhooks', 'retry', 'nosuch', '--home', g.home]);
    assert.deepEqual([unknown.status, unknown.json.error.code], [2, 'NOT_FOUND']);
    const recorded = latticeJson<{ events: { payload: Record<string, unknown> }[] }>(['audit', '--home', g.home, '--type', 'webhook.retried']).json.events;
    assert.deepEqual(recorded.map((e) => e.payload), [{ name: 'doomed', messages: 1 }]);
    await stop(g);
    await receiver.close();
  });

  it('sends approval.requested to Slack with the plan, its SHA-256 and the command that approves it', async () => {
    const receiver = await listen();
    const g = await gate(webhook('slack', receiver.url('/slack'), 'format = "slack"\nevents = ["approval.requested"]'));
    const agent = await newAgent(g.admin);
    const held = await execute(g, agent, 'fs.write', { path: 'docs/<!here>`x`.md', content: 'approved text\n' });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const approvalId = String(held.body['approvalId']);
    const planSha256 = String(held.body['planSha256']);
    await receiver.until(() => receiver.accepted().length === 1, 'the Slack message');
    const [d] = receiver.accepted();
    assert.ok(d?.verified, 'Slack-format deliveries are signed too');
    const message = d.json as { text: string; blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[] };
    const command = `lattice approvals approve ${approvalId} --plan-sha256 ${planSha256}`;
    assert.ok(message.text.includes(command), message.text);
    const texts = message.blocks.flatMap((b) => [b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text)]).join('\n');
    assert.ok(texts.includes(`*Plan SHA-256*\n\`${planSha256}\``), texts);
    assert.ok(texts.includes(`*Approve with*\n\`\`\`${command}\`\`\``), texts);
    assert.ok(texts.includes(`builder (${agent.peerId})`), texts);
    // The agent's path is shown escaped, inside the code block it cannot close.
    assert.match(texts, /\*Plan\*\n```write docs\/&lt;!here&gt;'x'\.md \(14 bytes, sha256 [0-9a-f]{64}\)```/);
    assert.ok(!texts.includes('<!here>'));
    assert.equal(message.blocks[0]?.type, 'header');
    // The command in the message is the one that approves.
    const approved = lattice([...command.split(' ').slice(1), '--home', g.home]);
    assert.equal(approved.status, 0, approved.stdout + approved.stderr);
    await stop(g);
    await receiver.close();
  });

  it('sends a webhook only the events it subscribed to', async () => {
    const receiver = await listen();
    const g = await gate(webhook('everything', receiver.url('/all')) + webhook('reviewers', receiver.url('/reviewers'), 'events = ["approval.requested"]'));
    const agent = await newAgent(g.admin);
    const executed = await echo(g, agent, 'not for reviewers');
    const held = await execute(g, agent, 'fs.write', { path: 'notes.md', content: 'x' });
    assert.equal(held.status, 202);
    // "everything" also hears what the new home set up at its first start (policy.changed, actions.changed).
    const all = () => receiver.accepted('/all').filter((d) => d.json.type !== 'policy.changed' && d.json.type !== 'actions.changed');
    await receiver.until(() => all().length === 2 && receiver.accepted('/reviewers').length === 1, 'both webhooks');
    assert.deepEqual(all().map((d) => [d.json.type, d.json.data?.seq]), [['action.executed', executed], ['approval.requested', held.body['auditEventId']]]);
    assert.deepEqual(receiver.deliveries.filter((d) => d.path === '/reviewers').map((d) => d.json.type), ['approval.requested']);
    await settled(g, 'reviewers', { pending: 0, delivered: 1, dead: 0, lastError: null }); // no message for action.executed was ever written for it
    await stop(g);
    await receiver.close();
  });

  it('refuses to start with a webhook whose secret it cannot resolve, and starts once the stored secret exists', async () => {
    const receiver = await listen();
    const home = join(tempDir(), 'home');
    const config = join(tempDir(), 'lattice.toml');
    writeFileSync(config, `[[webhooks]]\nname = "stored"\nurl = "${receiver.url('/stored')}"\nsecret = "env:LATTICE_TEST_UNSET_SECRET"\n`);
    await assert.rejects(startGate(home, '--config', config), /webhook "stored": its secret comes from \$LATTICE_TEST_UNSET_SECRET, which is not set in the gate's environment; export LATTICE_TEST_UNSET_SECRET=whsec_/);
    writeFileSync(config, `[[webhooks]]\nname = "stored"\nurl = "${receiver.url('/stored')}"\nsecret = "secret:STORED_HOOK"\n`);
    await assert.rejects(startGate(home, '--config', config), /webhook "stored": its secret comes from the stored secret STORED_HOOK, and there is none: start the gate without this webhook, run `lattice secrets set STORED_HOOK`/);
    const bare = await startGate(home);
    assert.equal((await asOperator(bare, 'POST', '/api/v1/secrets/STORED_HOOK', { value: SECRET })).status, 200);
    bare.child.kill('SIGTERM');
    await exited(bare.child);
    const g: TestGate = { home, config, ...(await startGate(home, '--config', config)) };
    const agent = await newAgent(g.admin);
    await echo(g, agent, 'signed with the stored key');
    await receiver.until(() => receiver.accepted('/stored').length === 1, 'the delivery');
    await stop(g);
    await receiver.close();
  });

  it('refuses a configuration that names an unknown key, another scheme or an unknown event, before it starts', () => {
    const home = join(tempDir(), 'home');
    const config = join(tempDir(), 'lattice.toml');
    for (const [toml, message] of [
      [webhook('a', 'https://hooks.example/x', 'retries = 3'), /unknown key webhooks\[0\]\.retries/],
      [webhook('a', 'ftp://hooks.example/x'), /webhook "a" \(webhooks\[0\]\): url must be http:\/\/ or https:\/\/, not ftp:/],
      [webhook('a', 'https://hooks.example/x', 'events = ["approval.requested", "approvals.requested"]'), /webhook "a" \(webhooks\[0\]\): unknown event type "approvals\.requested"/],
    ] as const) {
      writeFileSync(config, toml);
      const result = lattice(['up', '--home', home, '--config', config]);
      assert.equal(result.status, 2, result.stdout + result.stderr);
      assert.match(result.stderr, message);
    }
  });
});
