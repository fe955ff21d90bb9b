/**
 * The realtime event stream's reading (core/events/stream.ts) on a real ledger in this process: how much of the
 * ledger one turn of the event loop may read for a stream.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { EventHub } from '../../core/events/stream.ts';
import { homePaths } from '../../core/home.ts';
import { parseCidr } from '../../core/identity/overlay.ts';
import { Peers } from '../../core/identity/peers.ts';
import { SqliteReplayStore } from '../../core/identity/replay.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import type { RequestContext } from '../../core/server/http.ts';
import { tempDir } from '../helpers.ts';

/** A response that accepts everything at once (it never asks the stream to pause) and counts the events written. */
function sink(): { out: ServerResponse; events: () => number } {
  let text = '';
  const out = new Writable({
    highWaterMark: 1 << 30,
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { out: out as unknown as ServerResponse, events: () => (text.match(/^id: /gm) ?? []).length };
}

/** What the admin socket's request for `/api/v1/events` looks like to a route, with `headers`. */
function operatorRequest(headers: Record<string, string>, query = ''): RequestContext {
  const ctx: RequestContext = {
    listener: 'admin',
    method: 'GET',
    route: '/api/v1/events',
    params: {},
    query: new URLSearchParams(query),
    headers,
    url: 'http://localhost/api/v1/events',
    principal: null,
    authenticated: (principal) => void (ctx.principal = principal),
    readBody: () => Promise.resolve(undefined),
  };
  return ctx;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('event stream reading', () => {
  it('stream-replay-stall: a long replay is read a page per turn, yielding to the event loop between pages', async () => {
    const ledger = Ledger.open(homePaths(join(tempDir(), 'home')), { checkpointIntervalMs: 0 });
    const peers = new Peers(ledger, parseCidr('10.96.0.0/16'), 3_600_000);
    const hub = new EventHub(ledger, { db: ledger.database, peers, replay: new SqliteReplayStore(ledger), dpopWindowSeconds: 60 });
    const total = 3000;
    await Promise.all(Array.from({ length: total }, (_, i) => ledger.append({ type: 'action.executed', principal: 'peer_someone', action: 'echo', decision: 'allow', payload: { i } })));

    const reply = await hub.route().handle(operatorRequest({ 'last-event-id': '0' }));
    assert.ok('stream' in reply);
    const { out, events } = sink();
    reply.stream(out);
    // The request's own turn sends nothing; each later turn at most one page (256 events).
    assert.equal(events(), 0, 'the replay does not run inside the request that opened the stream');
    let turns = 0;
    let before = 0;
    while (events() < total) {
      await turn();
      turns++;
      assert.ok(events() - before <= 256, `one turn sent ${events() - before} events`);
      before = events();
      assert.ok(turns < 1000, 'the replay finishes');
    }
    assert.ok(turns >= Math.ceil(total / 256), `${turns} turns for ${total} events`);
    hub.close();
    ledger.close();
  });

  it('a stream that has caught up hears each new commit', async () => {
    const ledger = Ledger.open(homePaths(join(tempDir(), 'home')), { checkpointIntervalMs: 0 });
    const peers = new Peers(ledger, parseCidr('10.96.0.0/16'), 3_600_000);
    const hub = new EventHub(ledger, { db: ledger.database, peers, replay: new SqliteReplayStore(ledger), dpopWindowSeconds: 60 });
    const reply = await hub.route().handle(operatorRequest({}, 'events=action.executed'));
    assert.ok('stream' in reply);
    const { out, events } = sink();
    reply.stream(out);
    for (let i = 1; i <= 3; i++) {
      await ledger.append({ type: 'action.executed', principal: 'peer_someone', action: 'echo', decision: 'allow', payload: { i } });
      for (let n = 0; n < 20 && events() < i; n++) await turn();
      assert.equal(events(), i);
    }
    hub.close();
    ledger.close();
  });
});
