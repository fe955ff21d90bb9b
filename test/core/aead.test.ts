/** AES-256-GCM: the published test vector, fresh nonces, and refusal of anything that does not authenticate. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { open, randomKey, seal } from '../../core/crypto/aead.ts';

const hex = (text: string) => Buffer.from(text, 'hex');
const utf8 = (text: string) => Buffer.from(text, 'utf8');

// The GCM specification (McGrew & Viega), Appendix B, test case 16: AES-256 with additional data.
const VECTOR = {
  key: hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'),
  nonce: hex('cafebabefacedbaddecaf888'),
  aad: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
  plaintext: hex(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  ),
  ciphertext: hex(
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
  ),
  tag: hex('76fc6ece0f4e1768cddf8853bb2d551b'),
};

function flip(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  const at = index < 0 ? copy.length + index : index;
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

describe('aead', () => {
  it('opens the GCM specification test vector (ciphertext followed by the tag)', () => {
    const { key, nonce, aad, plaintext, ciphertext, tag } = VECTOR;
    assert.deepEqual(open(key, nonce, Buffer.concat([ciphertext, tag]), aad), plaintext);
  });

  it('round-trips, appending a 16-byte tag under a 12-byte nonce', () => {
    const key = randomKey();
    assert.equal(key.length, 32);
    for (const plaintext of [Buffer.alloc(0), utf8('hunter2'), Buffer.alloc(70_000, 0xab)]) {
      const sealed = seal(key, plaintext, utf8('context'));
      assert.equal(sealed.nonce.length, 12);
      assert.equal(sealed.ciphertext.length, plaintext.length + 16);
      assert.deepEqual(open(key, sealed.nonce, sealed.ciphertext, utf8('context')), plaintext);
    }
    const noAad = seal(key, utf8('x'), new Uint8Array(0));
    assert.deepEqual(open(key, noAad.nonce, noAad.ciphertext, new Uint8Array(0)), utf8('x'));
  });

  it('draws a fresh nonce for every seal', () => {
    const key = randomKey();
    const nonces = new Set<string>();
    const ciphertexts = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const sealed = seal(key, utf8('same plaintext'), utf8('same aad'));
      nonces.add(sealed.nonce.toString('hex'));
      ciphertexts.add(sealed.ciphertext.toString('hex'));
    }
    assert.equal(nonces.size, 1000);
    assert.equal(ciphertexts.size, 1000);
    assert.notDeepEqual(randomKey(), randomKey());
  });

  it('refuses a tampered tag, ciphertext, nonce, additional data or key', () => {
    const key = randomKey();
    const aad = utf8('lattice-secret:v1:A');
    const { nonce, ciphertext } = seal(key, utf8('attack at dawn'), aad);
    const attempts: [string, () => Buffer][] = [
      ['tag', () => open(key, nonce, flip(ciphertext, -1), aad)],
      ['ciphertext', () => open(key, nonce, flip(ciphertext, 0), aad)],
      ['nonce', () => open(key, flip(nonce, 0), ciphertext, aad)],
      ['aad', () => open(key, nonce, ciphertext, utf8('lattice-secret:v1:B'))],
      ['empty aad', () => open(key, nonce, ciphertext, new Uint8Array(0))],
      ['key', () => open(randomKey(), nonce, ciphertext, aad)],
      ['appended byte', () => open(key, nonce, Buffer.concat([ciphertext, Buffer.of(0)]), aad)],
      ['dropped byte', () => open(key, nonce, ciphertext.subarray(1), aad)],
      ['tag only', () => open(key, nonce, ciphertext.subarray(-16), aad)],
    ];
    for (const [what, attempt] of attempts) {
      assert.throws(attempt, /authentication failed/, what);
    }
  });

  it('refuses a ciphertext shorter than the tag (no truncated tags)', () => {
    const key = randomKey();
    const { nonce, ciphertext } = seal(key, new Uint8Array(0), new Uint8Array(0));
    for (const length of [0, 4, 8, 12, 15]) {
      assert.throws(() => open(key, nonce, ciphertext.subarray(0, length), new Uint8Array(0)), RangeError, `${length} bytes`);
    }
  });

  it('refuses keys and nonces of the wrong length', () => {
    const { nonce, ciphertext } = seal(randomKey(), utf8('x'), new Uint8Array(0));
    for (const length of [0, 16, 24, 31, 33, 64]) {
      const key = Buffer.alloc(length, 1);
      assert.throws(() => seal(key, utf8('x'), new Uint8Array(0)), RangeError, `seal, ${length}-byte key`);
      assert.throws(() => open(key, nonce, ciphertext, new Uint8Array(0)), RangeError, `open, ${length}-byte key`);
    }
    for (const length of [0, 8, 11, 13, 16]) {
      assert.throws(() => open(randomKey(), Buffer.alloc(length), ciphertext, new Uint8Array(0)), RangeError, `${length}-byte nonce`);
    }
  });
});
