/**
 * Webhooks below the gate: the outbox trigger is atomic with the event it announces (a rolled-back append leaves no
 * message, another process's append gets one), the subscription table follows the configuration with one event per
 * change, the deliverer counts silence and refused connections as failed attempts, signatures match the Standard
 * Webhooks test vector, and `[[webhooks]]` is refused by name when wrong. (End to end: test/gate/webhooks.test.ts.)
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig, type GateConfig } from '../../core/config/config.ts';
import { LatticeError } from '../../core/errors.ts';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { Deliverer } from '../../core/webhooks/deliverer.ts';
import { withSigningKeys } from '../../core/webhooks/keys.ts';
import { decodeSigningSecret, signedHeaders } from '../../core/webhooks/signature.ts';
import { syncSubscriptions } from '../../core/webhooks/subscriptions.ts';
import { tempDir } from '../helpers.ts';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function freshHome(): HomePaths {
  return homePaths(join(tempDir(), 'home'));
}

function config(toml: string): GateConfig {
  return parseConfig(toml, 'lattice.toml');
}

const TWO_HOOKS = config(`
[[webhooks]]
name = "all"
url = "https://hooks.example/all"
secret = "${SECRET}"

[[webhooks]]
name = "approvals"
url = "https://hooks.example/approvals"
secret = "${SECRET}"
events = ["approval.requested"]
`);

interface OutboxRow {
  webhook: string;
  seq: number;
  message_id: string;
  state: string;
  attempts: number;
}

function outbox(ledger: Ledger): OutboxRow[] {
  return ledger.database.prepare('SELECT webhook, seq, message_id, state, attempts FROM webhook_outbox ORDER BY seq, webhook').all() as OutboxRow[];
}

function typesOf(ledger: Ledger, type: string): { payload: string }[] {
  return ledger.database.prepare('SELECT payload FROM events WHERE type = ? ORDER BY seq').all(type) as { payload: string }[];
}

describe('webhook outbox', () => {
  it('writes one message per subscribed webhook with the event, and none for types nobody announces', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    await syncSubscriptions(ledger, TWO_HOOKS.webhooks);
    const executed = await ledger.append({ type: 'action.executed', principal: 'peer_a', action: 'echo', decision: 'allow' });
    const requested = await ledger.append({ type: 'approval.requested', principal: 'peer_a', action: 'fs.write', decision: 'hold' });
    await ledger.append({ type: 'gate.started' });
    const ledgerId = (JSON.parse(typesOf(ledger, 'ledger.created')[0]!.payload) as { ledgerId: string }).ledgerId.slice(4);
    assert.deepEqual(outbox(ledger), [
      { webhook: 'all', seq: executed.event.seq, message_id: `msg_${ledgerId}_all_${executed.event.seq}`, state: 'pending', attempts: 0 },
      { webhook: 'all', seq: requested.event.seq, message_id: `msg_${ledgerId}_all_${requested.event.seq}`, state: 'pending', attempts: 0 },
      { webhook: 'approvals', seq: requested.event.seq, message_id: `msg_${ledgerId}_approvals_${requested.event.seq}`, state: 'pending', attempts: 0 },
    ]);
    ledger.close();
  });

  it('leaves no message for an event whose append rolled back (its seq is reused without a conflict)', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    await syncSubscriptions(ledger, TWO_HOOKS.webhooks);
    const failing = ledger.append({ type: 'approval.requested', principal: 'peer_a', action: 'fs.write', decision: 'hold' }, {
      write: () => {
        throw new Error('the request row could not be written');
      },
    });
    const next = ledger.append({ type: 'action.denied', principal: 'peer_a', action: 'fs.write', decision: 'deny' });
    await assert.rejects(failing, /could not be written/);
    const denied = await next;
    // The denial took the seq the rolled-back event had: had that event's messages survived, the trigger would have
    // hit the (webhook, seq) primary key and the denial would have failed.
    assert.deepEqual(outbox(ledger).map((r) => [r.webhook, r.seq]), [['all', denied.event.seq]]);
    assert.equal(ledger.database.prepare(`SELECT count(*) FROM webhook_outbox WHERE webhook = 'approvals'`).pluck().get(), 0);
    ledger.close();
  });

  it('gives an event appended by another Ledger on the same file its message', async () => {
    const paths = freshHome();
    const gate = Ledger.open(paths, { checkpointIntervalMs: 0 });
    await syncSubscriptions(gate, TWO_HOOKS.webhooks);
    const other = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const { event } = await other.append({ type: 'approval.requested', principal: 'peer_b', action: 'fs.write', decision: 'hold' });
    other.close();
    assert.deepEqual(outbox(gate).map((r) => [r.webhook, r.seq]), [['all', event.seq], ['approvals', event.seq]]);
    gate.close();
  });

  it('has its trigger only while a webhook is subscribed, so a ledger without webhooks pays nothing per event', async () => {
    const ledger = Ledger.open(freshHome(), { checkpointIntervalMs: 0 });
    const triggers = () => ledger.database.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' AND name NOT LIKE 'events_no_%'`).pluck().all();
    assert.deepEqual(triggers(), []);
    await syncSubscriptions(ledger, TWO_HOOKS.webhooks);
    assert.deepEqual(triggers(), ['events_announce']);
    await syncSubscriptions(ledger, TWO_HOOKS.webhooks.slice(0, 1));
    assert.deepEqual(triggers(), ['events_announce'], 'one webhook is left');
    await syncSubscriptions(ledger, []);
    assert.deepEqual(triggers(), []);
    await ledger.append({ type: 'action.executed' });
    assert.deepEqual(outbox(ledger), []);
    ledger.close();
  });

  it('follows the configuration: one event per new, changed or removed webhook, nothing when unchanged', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    assert.deepEqual(await syncSubscriptions(ledger, TWO_HOOKS.webhooks), ['all', 'approvals']);
    assert.deepEqual(await syncSubscriptions(ledger, TWO_HOOKS.webhooks), []);
    await ledger.append({ type: 'approval.requested', principal: 'peer_a', action: 'fs.write', decision: 'hold' });
    const onlyAll = config(`[[webhooks]]\nname = "all"\nurl = "https://hooks.example/elsewhere"\nsecret = "${SECRET}"\n`);
    assert.deepEqual(await syncSubscriptions(ledger, onlyAll.webhooks), ['all', 'approvals']);
    const configured = typesOf(ledger, 'webhook.configured').map((e) => JSON.parse(e.payload) as Record<string, unknown>);
    assert.equal(configured.length, 3);
    // The origin only: a path can be a credential (Slack's are); the secret never.
    assert.deepEqual(configured[2], {
      name: 'all',
      origin: 'https://hooks.example',
      events: TWO_HOOKS.webhooks[0]!.events,
      format: 'standard',
      maxAttempts: 12,
      backoffMs: 5000,
      maxBackoffMs: 3_600_000,
    });
    assert.equal(ledger.database.prepare(`SELECT count(*) FROM events WHERE payload LIKE '%MfKQ9r8%' OR payload LIKE '%/elsewhere%'`).pluck().get(), 0);
    assert.deepEqual(typesOf(ledger, 'webhook.removed').map((e) => JSON.parse(e.payload) as unknown), [{ name: 'approvals', undelivered: 1 }]);
    assert.deepEqual(outbox(ledger).map((r) => r.webhook), ['all'], 'a removed webhook takes its messages with it');
    ledger.close();
  });
});

describe('webhook deliverer', () => {
  it('counts a receiver that never answers and a refused connection as failed attempts, then dead', async () => {
    const silent = createServer(() => undefined); // takes the request and never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const hook = (name: string, url: string) => `[[webhooks]]\nname = "${name}"\nurl = "${url}"\nsecret = "${SECRET}"\nbackoff = "10ms"\nmax_attempts = 2\n`;
    const { webhooks } = config(hook('silent', `http://127.0.0.1:${port}/`) + hook('refused', 'http://127.0.0.1:1/'));
    const ledger = Ledger.open(freshHome(), { checkpointIntervalMs: 0 });
    await syncSubscriptions(ledger, webhooks);
    const deliverer = new Deliverer({ ledger, webhooks: withSigningKeys(webhooks, { env: {}, secret: () => SECRET }), userAgent: 'test', timeoutMs: 200 });
    deliverer.start();
    const { event } = await ledger.append({ type: 'action.executed' });
    const rows = () => ledger.database.prepare('SELECT webhook, seq, state, attempts, last_error AS lastError FROM webhook_outbox ORDER BY webhook').all();
    const dead = () => ledger.database.prepare(`SELECT count(*) FROM webhook_outbox WHERE state = 'dead'`).pluck().get() as number;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && dead() < 2; ) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(rows(), [
      { webhook: 'refused', seq: event.seq, state: 'dead', attempts: 2, lastError: 'connect ECONNREFUSED 127.0.0.1:1' },
      { webhook: 'silent', seq: event.seq, state: 'dead', attempts: 2, lastError: 'no answer within 0.2 s' },
    ]);
    await deliverer.stop();
    ledger.close();
    silent.closeAllConnections();
    silent.close();
  });
});

describe('webhook signatures', () => {
  it('match the Standard Webhooks test vector', () => {
    const headers = signedHeaders(decodeSigningSecret(SECRET), 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    assert.deepEqual(headers, {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('refuse secrets that are not whsec_ and padded base64 of 24 to 64 bytes', () => {
    for (const [secret, message] of [
      ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', /starts with whsec_/],
      ['whsec_not base64!', /padded standard base64/],
      ['whsec_c2hvcnQ=', /24 to 64 bytes, this one has 5/],
      [`whsec_${Buffer.alloc(65).toString('base64')}`, /this one has 65/],
    ] as const) {
      assert.throws(() => decodeSigningSecret(secret), message);
    }
  });
});

describe('webhook configuration', () => {
  const invalid = (message: RegExp) => (e: unknown) => e instanceof LatticeError && e.code === 'CONFIG_INVALID' && message.test(e.message);
  const hook = (lines: string) => `[[webhooks]]\nname = "alerts"\n${lines}\n`;

  it('defaults to every announced event, the standard format and 12 attempts from 5 s doubling to 1 h', () => {
    const [w] = config(hook(`url = "https://hooks.example/x"\nsecret = "env:ALERTS_SECRET"`)).webhooks;
    assert.deepEqual(w?.events, ['action.executed', 'action.denied', 'action.failed', 'action.reported', 'approval.requested', 'approval.decided', 'delegation.created', 'delegation.expired', 'delegation.revoked', 'policy.changed', 'actions.changed', 'anomaly.detected', 'enforcement.triggered']);
    assert.ok(w.ledgerTypes.includes('approval.cancelled') && w.ledgerTypes.includes('policy.applied'));
    assert.deepEqual([w.format, w.maxAttempts, w.backoffMs, w.maxBackoffMs, w.secret], ['standard', 12, 5000, 3_600_000, { kind: 'env', name: 'ALERTS_SECRET' }]);
  });

  it('refuses, naming the webhook and the key: unknown keys, other schemes, credentials in the URL, unknown events, bad secrets, duplicates', () => {
    const url = 'url = "https://hooks.example/x"';
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nretries = 3`), 'f'), invalid(/unknown key webhooks\[0\]\.retries/));
    assert.throws(() => parseConfig(hook(`${url}\nsercet = "env:S"`), 'f'), invalid(/unknown key webhooks\[0\]\.sercet \(did you mean webhooks\[0\]\.secret\?\)/));
    assert.throws(() => parseConfig(hook(`url = "ftp://hooks.example/x"\nsecret = "env:S"`), 'f'), invalid(/webhook "alerts" \(webhooks\[0\]\): url must be http:\/\/ or https:\/\/, not ftp:/));
    assert.throws(() => parseConfig(hook(`url = "file:///etc/passwd"\nsecret = "env:S"`), 'f'), invalid(/webhook "alerts".*not file:/));
    assert.throws(() => parseConfig(hook(`url = "hooks.example/x"\nsecret = "env:S"`), 'f'), invalid(/webhook "alerts".*not an absolute URL/));
    assert.throws(() => parseConfig(hook(`url = "https://u:p@hooks.example/x"\nsecret = "env:S"`), 'f'), invalid(/webhook "alerts".*must not carry credentials/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nevents = ["action.executed", "action.exec"]`), 'f'), invalid(/webhook "alerts".*unknown event type "action\.exec"; known: action\.executed/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nevents = []`), 'f'), invalid(/webhook "alerts".*events is empty/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "hunter2"`), 'f'), invalid(/webhook "alerts".*secret must be env:NAME, secret:NAME or a whsec_ key/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:"`), 'f'), invalid(/webhook "alerts".*does not name an environment variable/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nbackoff = "soon"`), 'f'), invalid(/webhooks\[0\]\.backoff "soon" is not a duration/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nbackoff = "1m"\nmax_backoff = "10s"`), 'f'), invalid(/max_backoff \(10s\) is shorter than backoff \(1m\)/));
    assert.throws(() => parseConfig(hook(`${url}\nsecret = "env:S"\nformat = "teams"`), 'f'), invalid(/webhooks\[0\]\.format must be equal to one of the allowed values/));
    assert.throws(() => parseConfig(`${hook(`${url}\nsecret = "env:S"`)}${hook(`${url}\nsecret = "env:S"`)}`, 'f'), invalid(/webhook "alerts" \(webhooks\[1\]\): another webhook has the same name/));
    assert.throws(() => parseConfig(`[[webhooks]]\nname = "a.b"\n${url}\nsecret = "env:S"\n`, 'f'), invalid(/webhooks\[0\]\.name must match pattern/));
  });

  it('refuses to go on without a key, naming the webhook and the fix', () => {
    const [env, stored] = config(`${hook('url = "https://hooks.example/x"\nsecret = "env:ALERTS_SECRET"')}[[webhooks]]\nname = "slack"\nurl = "https://hooks.example/y"\nsecret = "secret:SLACK_HOOK"\n`).webhooks;
    const none = { env: {}, secret: () => { throw new LatticeError('SECRET_NOT_FOUND', 'no secret named SLACK_HOOK'); } };
    assert.throws(() => withSigningKeys([env!], none), invalid(/webhook "alerts": its secret comes from \$ALERTS_SECRET, which is not set.*export ALERTS_SECRET=whsec_/));
    assert.throws(() => withSigningKeys([env!], { ...none, env: { ALERTS_SECRET: 'whsec_c2hvcnQ=' } }), invalid(/webhook "alerts": the value of \$ALERTS_SECRET is not a usable key: .*24 to 64 bytes/));
    assert.throws(() => withSigningKeys([stored!], none), invalid(/webhook "slack": its secret comes from the stored secret SLACK_HOOK, and there is none: .*lattice secrets set SLACK_HOOK/));
    const keys = withSigningKeys([env!, stored!], { env: { ALERTS_SECRET: SECRET }, secret: () => SECRET });
    assert.deepEqual(keys.map((k) => [k.config.name, k.key.length]), [['alerts', 24], ['slack', 24]]);
  });
});
