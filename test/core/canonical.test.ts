/** Canonical JSON and the event encoding that every hash in the ledger depends on. */
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import canonicalizeJcs from 'canonicalize';
import { canonicalize, isCanonical, parseCanonical, type JsonObject } from '../../core/canonical.ts';
import { DECISIONS, canonicalEventText, eventHash } from '../../core/ledger/event.ts';
import { sha256Hex } from '../../core/crypto/index.ts';

const json = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonObject>;
const payload = fc.dictionary(fc.string(), json, { maxKeys: 6 });
const nullableString = fc.option(fc.string({ maxLength: 40 }), { nil: null });

describe('canonical JSON', () => {
  it('follows RFC 8785 for the examples that matter here', () => {
    assert.equal(canonicalize({ b: 1, a: [true, null, 'x'], c: { z: 1e21, y: 0.1 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":0.1,"z":1e+21}}');
    assert.equal(canonicalize({ '\u20ac': 1, '\r': 2, '1': 3 }), '{"\\r":2,"1":3,"€":1}');
    assert.equal(canonicalize(-0), '0');
  });

  it('refuses values JSON cannot represent faithfully', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 1, 10n, Symbol('s'), new Date(0)]) {
      assert.throws(() => canonicalize({ v: bad } as never), TypeError, String(bad));
    }
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.throws(() => canonicalize(cyclic as never), /cyclic/);
  });

  it('is idempotent: canonical text parses back to the same canonical text', () => {
    fc.assert(fc.property(json, (value) => isCanonical(canonicalize(value))));
  });

  it('decides canonical form exactly as the canonicalize library does, for any JSON text', () => {
    const library = (text: string) => {
      try {
        return canonicalizeJcs(JSON.parse(text)) === text;
      } catch {
        return false;
      }
    };
    const texts = fc.oneof(
      json.map((v) => canonicalize(v)),
      json.map((v) => JSON.stringify(v)),
      json.map((v) => JSON.stringify(v, null, 1)),
      fc.string(),
    );
    fc.assert(fc.property(texts, (text) => (parseCanonical(text) !== undefined) === library(text)), { numRuns: 2000 });
    // The cases the fast path hands to the library: integer-like keys, escapes, lone surrogates.
    assert.notEqual(parseCanonical('{"10":1,"9":2}'), undefined);
    assert.equal(parseCanonical('{"9":2,"10":1}'), undefined);
    assert.notEqual(parseCanonical('{"a":"\\u001f"}'), undefined);
    assert.equal(parseCanonical('"\\ud800"'), undefined);
    assert.equal(parseCanonical('{"b":1,"a":2}'), undefined);
    assert.equal(parseCanonical('1.0'), undefined);
  });

  it('recognises non-canonical text', () => {
    assert.equal(isCanonical('{"b":1,"a":2}'), false);
    assert.equal(isCanonical('{ "a":1}'), false);
    assert.equal(isCanonical('not json'), false);
    assert.equal(isCanonical('{"a":1,"b":2}'), true);
  });
});

describe('ledger event encoding', () => {
  it('assembles exactly the RFC 8785 form of the event', () => {
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          ts: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          type: fc.string({ minLength: 1, maxLength: 20 }),
          principal: nullableString,
          action: nullableString,
          decision: fc.option(fc.constantFrom(...DECISIONS), { nil: null }),
          payload,
        }),
        (e) => {
          const text = canonicalEventText({ ...e, payload: canonicalize(e.payload) }, e.seq, e.ts);
          assert.equal(text, canonicalize(e));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hashes sha256(prevHash ‖ canonical event) over their UTF-8 bytes', () => {
    const prev = 'ab'.repeat(32);
    const text = '{"action":null,"decision":null,"payload":{},"principal":null,"seq":1,"ts":"2026-01-01T00:00:00.000Z","type":"t"}';
    // Pinned literal, computed independently: sha256 of the 64 hex characters followed by the event text.
    assert.equal(eventHash(prev, text), '611d096d52e14a722f4ecc12bec86ba3125a3666c0fecbe294e362af1c945737');
    assert.equal(eventHash(prev, text), sha256Hex(prev + text));
  });
});
