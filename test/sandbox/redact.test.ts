/**
 * The redactor that keeps a route's key out of upstream answers: every occurrence overwritten at its length, across
 * any chunking, and nothing held back that cannot begin a key (so server-sent events are not delayed).
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { redactor } from '../../sandbox/redact.ts';

const through = (secrets: string[], chunks: string[]) => text(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(redactor(secrets).stream()));

describe('redact', () => {
  it('credential-echo: overwrites the key and the header value in text and in a stream split inside the key', async () => {
    const r = redactor(['Bearer sk-abc123', 'sk-abc123']);
    assert.equal(r.text('authorization: Bearer sk-abc123\r\nx: sk-abc123'), `authorization: ${'*'.repeat(16)}\r\nx: ${'*'.repeat(9)}`);
    assert.equal(await through(['sk-abc123'], ['{"k":"sk-a', 'bc', '123"}']), `{"k":"${'*'.repeat(9)}"}`);
  });

  it('holds back only what could begin the key: an event that cannot is passed on whole at once', () => {
    const stream = redactor(['sk-abc123']).stream();
    const out: string[] = [];
    stream.on('data', (d: Buffer) => out.push(d.toString()));
    stream.write('data: first\n\n');
    stream.write('data: s');
    assert.deepEqual(out, ['data: first\n\n', 'data: ']);
  });

  it('property: any chunking of any text gives the whole text with every key overwritten, and no key left', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.constant('sk-key'), fc.string({ maxLength: 8 }))), fc.array(fc.nat(40), { maxLength: 6 }), async (parts, cuts) => {
      const whole = parts.join('');
      const points = [...new Set(cuts.map((c) => Math.min(c, whole.length)))].sort((a, b) => a - b);
      const chunks = [0, ...points].map((p, i, all) => whole.slice(p, all[i + 1] ?? whole.length)).filter((c) => c.length > 0);
      const got = await through(['sk-key'], chunks);
      assert.equal(got, redactor(['sk-key']).text(whole));
      assert.equal(got.length, whole.length);
      assert.ok(!got.includes('sk-key'));
    }));
  });
});
