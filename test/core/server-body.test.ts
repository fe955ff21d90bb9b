/** Request bodies and route parameters, as the gate's HTTP layer reads them from an attacker (core/server). */
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyBudget, nestingExceeds, parseJson } from '../../core/server/body.ts';
import type { Route } from '../../core/server/http.ts';
import { compile, match, parseTarget } from '../../core/server/routing.ts';
import { rejectsWithCode } from '../helpers.ts';

/** Nesting depth of a JSON value, by recursion: the reference the one-pass scanner is checked against. */
function depth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depth));
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code ?? 'not a LatticeError';
  }
  return 'nothing thrown';
}

describe('JSON bodies', () => {
  it('measures nesting exactly as the parsed value has it, brackets and escapes in strings included', () => {
    const tricky = fc.oneof(fc.string(), fc.constantFrom('[', ']', '{', '}', '\\', '"', '\\"[', '[\\\\', '\\u005b'));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, tricky, fc.integer(), fc.constant(null), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(tricky, tie('value'), { maxKeys: 4 })),
    })).value;
    fc.assert(
      fc.property(json, fc.integer({ min: 0, max: 8 }), (value, max) => {
        assert.equal(nestingExceeds(JSON.stringify(value), max), depth(value) > max);
      }),
      { numRuns: 2000 },
    );
  });

  it('deep-body: refuses nesting past 64 levels before parsing, and parses 64', () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    assert.equal(refusal(() => parseJson(Buffer.from(`{"a":${nested(100_000)}}`))), 'VALIDATION_FAILED');
    assert.equal(refusal(() => parseJson(Buffer.from(nested(65)))), 'VALIDATION_FAILED');
    assert.equal(depth(parseJson(Buffer.from(nested(64)))), 64);
  });

  it('invalid-utf8: refuses bytes that are not UTF-8 instead of replacing them with U+FFFD', () => {
    const cases = [
      Buffer.from([0x22, 0x78, 0xff, 0x22]), // a raw 0xFF
      Buffer.from([0x22, 0xc0, 0x80, 0x22]), // an overlong NUL
      Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), // a UTF-16 surrogate encoded as UTF-8
      Buffer.from([0x22, 0xe6, 0x97, 0x22]), // a truncated sequence
      Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // a byte order mark before {}: not JSON (RFC 8259 §8.1)
    ];
    for (const bytes of cases) assert.equal(refusal(() => parseJson(bytes)), 'BAD_REQUEST', bytes.toString('hex'));
    // The legitimate case: any well-formed UTF-8 comes back exactly as sent.
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        assert.deepEqual(parseJson(Buffer.from(JSON.stringify({ text }), 'utf8')), { text });
      }),
      { numRuns: 500 },
    );
  });

  it('refuses text that is not JSON with BAD_REQUEST, never with the parser\'s words', () => {
    for (const text of ['{not json', '', '{"a":1}x', '[1,]']) assert.equal(refusal(() => parseJson(Buffer.from(text))), 'BAD_REQUEST', text);
  });

  it('lends buffer room across requests only up to its limit', () => {
    const budget = new BodyBudget(10);
    assert.equal(budget.take(6), true);
    assert.equal(budget.take(5), false, 'nothing is taken when it does not fit');
    assert.equal(budget.take(4), true);
    budget.give(6);
    assert.equal(budget.take(6), true);
  });
});

describe('routes and request targets', () => {
  const noop = () => Promise.resolve({ status: 200, body: null });
  const routes = ([
    { method: 'POST', path: '/api/v1/actions/:id/execute', on: ['gate'], handle: noop },
    { method: 'GET', path: '/api/v1/peers/:id', on: ['admin'], handle: noop },
  ] satisfies Route[]).map(compile);

  it('percent-encoding: a malformed %-escape in a parameter is BAD_REQUEST, not an internal failure', () => {
    for (const raw of ['%ZZ', '%', 'a%2', '%E0%A4%A', '%FF', '%C0%80', '%ED%A0%80']) {
      assert.equal(refusal(() => match(routes, 'gate', 'POST', `/api/v1/actions/${raw}/execute`)), 'BAD_REQUEST', raw);
    }
    // The legitimate case: well-formed escapes are decoded.
    assert.equal(match(routes, 'gate', 'POST', '/api/v1/actions/%65cho/execute').params['id'], 'echo');
  });

  it('decodes any well-formed parameter exactly, and answers anything else with a client-fault code', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), (id) => {
        const encoded = encodeURIComponent(id);
        if (encoded.length <= 256) assert.equal(match(routes, 'gate', 'POST', `/api/v1/actions/${encoded}/execute`).params['id'], id);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'), fc.constantFrom('gate', 'admin', 'tcp'), (tail, method, listener) => {
        const code = refusal(() => match(routes, listener, method, parseTarget(`/api/v1/${tail}`).pathname));
        assert.ok(['nothing thrown', 'BAD_REQUEST', 'NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(code), code);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps operator routes to their listener and names a wrong method', () => {
    assert.equal(refusal(() => match(routes, 'gate', 'GET', '/api/v1/peers/peer_x')), 'NOT_FOUND');
    assert.equal(refusal(() => match(routes, 'gate', 'GET', '/api/v1/actions/echo/execute')), 'METHOD_NOT_ALLOWED');
  });

  it('reads any request target Node hands over as a path, or refuses it as BAD_REQUEST', async () => {
    await rejectsWithCode(Promise.resolve().then(() => parseTarget('http://[::1')), 'BAD_REQUEST');
    assert.equal(parseTarget('http://elsewhere.example/api/v1/health?x=1').pathname, '/api/v1/health', 'an absolute-form target keeps only its path');
    assert.equal(parseTarget('/api/v1/../v1/health').pathname, '/api/v1/health');
  });
});
