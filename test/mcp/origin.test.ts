/**
 * mcp/origin.ts on its own: which Host and Origin values a loopback MCP server answers to, for the addresses it can
 * be bound to, with the default port, and against values built to look alike.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foreignSource, loopbackAuthorities } from '../../mcp/origin.ts';

describe('mcp origin', () => {
  it('answers to the loopback names and the bound address, on the bound port only', () => {
    assert.deepEqual([...loopbackAuthorities('127.0.0.1', 7801)].sort(), ['127.0.0.1:7801', '[::1]:7801', 'localhost:7801']);
    assert.deepEqual([...loopbackAuthorities('127.0.0.2', 7801)].sort(), ['127.0.0.1:7801', '127.0.0.2:7801', '[::1]:7801', 'localhost:7801']);
    assert.deepEqual([...loopbackAuthorities('::1', 7801)].sort(), ['127.0.0.1:7801', '[::1]:7801', 'localhost:7801']);
    assert.ok(loopbackAuthorities('127.0.0.1', 80).has('localhost'), 'clients leave the default port out');
    assert.ok(!loopbackAuthorities('127.0.0.1', 7801).has('localhost'));
  });

  it('origin-lookalike: refuses a missing or foreign Host and a present Origin that is not the server\'s own', () => {
    const own = loopbackAuthorities('127.0.0.1', 7801);
    const check = (host: string | undefined, origin?: string) => foreignSource({ ...(host !== undefined && { host }), ...(origin !== undefined && { origin }) }, own);
    for (const host of [undefined, '', 'evil.example:7801', '127.0.0.1', '127.0.0.1:7802', '127.0.0.1:7801.evil.example', 'localhost:7801@evil.example', '0.0.0.0:7801']) {
      assert.notEqual(check(host), null, `Host ${String(host)}`);
    }
    const origins = ['null', '', 'http://evil.example', 'http://127.0.0.1:7802', 'https://127.0.0.1:7801', 'http://127.0.0.1:7801/', 'http://127.0.0.1:7801.evil.example', 'http://localhost:7801, http://evil.example', 'ws://localhost:7801'];
    for (const origin of origins) assert.notEqual(check('127.0.0.1:7801', origin), null, `Origin ${origin}`);
    assert.match(check('127.0.0.1:7801', 'http://evil.example\u001b[2J') ?? '', /Origin "http:\/\/evil.example\\u001b\[2J" is not this server's own/, 'quoted, control characters escaped');

    assert.equal(check('127.0.0.1:7801'), null, 'no Origin: a non-browser client');
    assert.equal(check('LOCALHOST:7801', 'HTTP://LOCALHOST:7801'), null, 'names are case-insensitive');
    for (const origin of ['http://127.0.0.1:7801', 'http://localhost:7801', 'http://[::1]:7801']) assert.equal(check('localhost:7801', origin), null, origin);
  });
});
