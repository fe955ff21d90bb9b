/**
 * The gate's HTTP boundary under hostile input, against a real gate process over its unix sockets: what is read
 * before the caller is authenticated, malformed %-encoding, oversized headers, CONNECT, invalid UTF-8 and deep
 * bodies. Each attack next to the legitimate request it must not break.
 */
import * as DPoP from 'dpop';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lattice } from '../helpers.ts';
import { BASE, asAgent, asOperator, call, codeOf, enroll, eventually, gate, ledgerEvents, newAgent, raw } from './harness.ts';

const EXECUTE = '/api/v1/actions/echo/execute';

describe('authentication before the body', () => {
  it('unauthenticated-enroll: a request without a credential and with a partial body is answered 401, not the schema\'s complaint', async () => {
    const g = await gate();
    const reply = await call({ socketPath: g.gate }, 'POST', '/api/v1/agent-enroll', JSON.stringify({ agentName: 'x' }));
    assert.equal(reply.status, 401, JSON.stringify(reply.body));
    assert.equal(codeOf(reply), 'UNAUTHENTICATED');
    // The legitimate case: an enroll token, then the body, validated and enrolled.
    const token = await asOperator(g, 'POST', '/api/v1/tokens', { scopes: ['enroll'], workspace: 'ws-test' });
    assert.equal(token.status, 201, JSON.stringify(token.body));
    const keys = await DPoP.generateKeyPair('ES256');
    const enrolled = await enroll(g.gate, keys, {}, { authorization: `Bearer ${String(token.body['token'])}` });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const partial = await call({ socketPath: g.gate }, 'POST', '/api/v1/agent-enroll', JSON.stringify({ agentName: 'x' }), { authorization: `Bearer ${String(token.body['token'])}` });
    assert.equal(codeOf(partial), 'VALIDATION_FAILED', 'an authenticated caller hears what is wrong with its body');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('body-before-auth: an unauthenticated request is answered without its body being waited for or read', async () => {
    const g = await gate();
    const head = `POST ${EXECUTE} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 900000\r\n\r\n`;
    const started = Date.now();
    const exchange = await raw(g.gate, [head, '{"params":{"message":"'], 4000);
    assert.equal(exchange.status, 401, exchange.text.slice(0, 300));
    assert.match(exchange.text, /"UNAUTHENTICATED"/);
    assert.ok(Date.now() - started < 4000, 'answered before the rest of the body arrived');
    assert.match(exchange.text, /connection: close/i, 'the unread body is not read on: the connection closes');
    // The legitimate case: an agent's body is read after its proof checks out.
    const agent = await newAgent(g.admin);
    const ok = await asAgent(g.gate, agent, 'POST', EXECUTE, JSON.stringify({ params: { message: 'hello' } }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('hostile requests', () => {
  it('percent-encoding: a malformed %-escape in a route parameter is a 400 client fault, recorded as a refusal', async () => {
    const g = await gate();
    for (const path of ['/api/v1/actions/%ZZ/execute', '/api/v1/actions/%E0%A4%A/execute', '/api/v1/actions/%/execute']) {
      const reply = await call({ socketPath: g.gate }, 'POST', path, '{}');
      assert.equal(reply.status, 400, `${path}: ${JSON.stringify(reply.body)}`);
      assert.equal(codeOf(reply), 'BAD_REQUEST');
    }
    assert.equal(ledgerEvents(g.home, 'request.failed').length, 0, 'no internal failure');
    assert.deepEqual(ledgerEvents(g.home, 'request.refused').map((e) => e.payload['code']), ['BAD_REQUEST', 'BAD_REQUEST', 'BAD_REQUEST']);
    // The legitimate case: a well-formed escape names the action.
    const agent = await newAgent(g.admin);
    const ok = await asAgent(g.gate, agent, 'POST', '/api/v1/actions/%65cho/execute', JSON.stringify({ params: { message: 'hi' } }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('header-flood: a 1 MiB header line is refused once, recorded once, and its connection closed at once', async () => {
    const g = await gate();
    const chunks = ['GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nx-flood: ', ...Array.from({ length: 64 }, () => 'a'.repeat(16 * 1024))];
    const exchange = await raw(g.gate, chunks, 5000);
    assert.equal(exchange.status, 400, exchange.text.slice(0, 300));
    assert.equal(exchange.closed, true, 'the gate closed the connection');
    await eventually(() => ledgerEvents(g.home, 'request.refused').length > 0, 5000, 'the refusal to be recorded');
    await new Promise((r) => setTimeout(r, 500)); // time for any further (wrong) record to land
    assert.equal(ledgerEvents(g.home, 'request.refused').length, 1);
    // The legitimate case: headers under the limit are served.
    const ok = await call({ socketPath: g.gate }, 'GET', '/api/v1/health', undefined, { 'x-large': 'a'.repeat(8 * 1024) });
    assert.equal(ok.status, 200);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('connect-method: CONNECT on the gate socket is answered 405 and recorded, like any other method it does not serve', async () => {
    const g = await gate();
    // The target is only text: the gate makes no connection for anyone.
    const exchange = await raw(g.gate, ['CONNECT 127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n'], 4000);
    assert.equal(exchange.status, 405, exchange.text.slice(0, 300) || '(no answer)');
    assert.match(exchange.text, /"METHOD_NOT_ALLOWED"/);
    await eventually(() => ledgerEvents(g.home, 'request.refused').some((e) => e.payload['code'] === 'METHOD_NOT_ALLOWED'), 5000, 'the refusal to be recorded');
    const put = await call({ socketPath: g.gate }, 'PUT', '/api/v1/health', '{}');
    assert.equal(put.status, 405);
    assert.equal((await call({ socketPath: g.gate }, 'GET', '/api/v1/health')).status, 200);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('invalid-utf8: a JSON body with a raw 0xFF byte is refused 400, never executed with U+FFFD in its place', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const body = Buffer.concat([Buffer.from('{"params":{"message":"x'), Buffer.from([0xff]), Buffer.from('"}}')]);
    const reply = await asAgent(g.gate, agent, 'POST', EXECUTE, body);
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(codeOf(reply), 'BAD_REQUEST');
    assert.match(reply.body.error?.message ?? '', /UTF-8/);
    assert.equal(ledgerEvents(g.home, 'action.executed').length, 0);
    // The legitimate case: any well-formed UTF-8 is executed and answered exactly as sent.
    const message = 'x é 日本 🎉';
    const ok = await asAgent(g.gate, agent, 'POST', EXECUTE, Buffer.from(JSON.stringify({ params: { message } }), 'utf8'));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual((ok.body['output'] as { message: string }).message, message);
    const charset = await call({ socketPath: g.gate }, 'POST', EXECUTE, '{}', { 'content-type': 'application/json; charset=iso-8859-1', authorization: `DPoP ${agent.token}`, dpop: await DPoP.generateProof(agent.keys, `${BASE}${EXECUTE}`, 'POST', undefined, agent.token) });
    assert.equal(codeOf(charset), 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('lone-surrogate: a \\ud800 escape in a value or a key is refused 400 VALIDATION_FAILED, not a 500 and request.failed', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    for (const body of ['{"params":{"message":"\\ud800"}}', '{"params":{"message":"x\\udfff"}}', '{"params":{"message":"x","\\udbff":1}}', '{"params":{"message":"x"},"metadata":{"note":["\\ud800x"]}}']) {
      const reply = await asAgent(g.gate, agent, 'POST', EXECUTE, body);
      assert.equal(reply.status, 400, `${body}: ${JSON.stringify(reply.body)}`);
      assert.equal(codeOf(reply), 'VALIDATION_FAILED');
      assert.match(reply.body.error?.message ?? '', /lone UTF-16 surrogate/);
    }
    assert.equal(ledgerEvents(g.home, 'request.failed').length, 0);
    assert.equal(ledgerEvents(g.home, 'action.executed').length, 0);
    // The legitimate case: a surrogate pair sent as escapes is one well-formed character, executed as sent.
    const ok = await asAgent(g.gate, agent, 'POST', EXECUTE, '{"params":{"message":"\\ud83c\\udf89"}}');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((ok.body['output'] as { message: string }).message, '🎉');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('deep-replay: 100,000-deep params under an eventId already used are refused 400, not a stack overflow', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const first = await asAgent(g.gate, agent, 'POST', EXECUTE, JSON.stringify({ params: { message: 'once' }, eventId: 'evt-1' }));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const deep = `{"params":{"message":"once","x":${'['.repeat(100_000)}${']'.repeat(100_000)}},"eventId":"evt-1"}`;
    const reply = await asAgent(g.gate, agent, 'POST', EXECUTE, deep);
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(codeOf(reply), 'VALIDATION_FAILED');
    // Under the body's limit but over the params' (32): refused on the repeat path too, before any hashing.
    const params40 = `{"params":{"message":"once","x":${'['.repeat(40)}${']'.repeat(40)}},"eventId":"evt-1"}`;
    const repeat40 = await asAgent(g.gate, agent, 'POST', EXECUTE, params40);
    assert.equal(codeOf(repeat40), 'VALIDATION_FAILED');
    assert.match(repeat40.body.error?.message ?? '', /nested deeper than 32/);
    assert.equal(ledgerEvents(g.home, 'request.failed').length, 0);
    // The legitimate case: the same request again gets the first answer.
    const again = await asAgent(g.gate, agent, 'POST', EXECUTE, JSON.stringify({ params: { message: 'once' }, eventId: 'evt-1' }));
    assert.equal(again.status, 200);
    assert.equal(again.body['requestId'], first.body['requestId']);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});
