/**
 * Authenticated encryption: AES-256-GCM with a 12-byte nonce and a full 16-byte tag appended to the ciphertext.
 *
 * Guards the confidentiality and integrity of small values at rest (secrets). `seal` draws a fresh random nonce
 * for every call, so callers cannot reuse one (random 96-bit nonces are safe for far more messages per key than
 * a secrets store will ever seal). `open` refuses, by throwing, anything that does not authenticate under the
 * key, nonce and additional data: a changed byte, a truncated or shortened tag, another key, another context. It
 * never returns unauthenticated plaintext. Wrong key or nonce lengths are refused before any work is done.
 */
import { nodeCrypto } from './node.ts';

const ALGORITHM = 'aes-256-gcm';
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

export interface Sealed {
  readonly nonce: Buffer;
  /** The ciphertext followed by the 16-byte authentication tag. */
  readonly ciphertext: Buffer;
}

/** A new random 256-bit key. */
export function randomKey(): Buffer {
  return nodeCrypto().randomBytes(AEAD_KEY_BYTES);
}

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Sealed {
  checkLength('key', key, AEAD_KEY_BYTES);
  const nonce = nodeCrypto().randomBytes(AEAD_NONCE_BYTES);
  const cipher = nodeCrypto().createCipheriv(ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { nonce, ciphertext: Buffer.concat([body, cipher.getAuthTag()]) };
}

/** Decrypts and authenticates; throws if the ciphertext, its tag, the nonce, the key or the AAD do not match. */
export function open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Buffer {
  checkLength('key', key, AEAD_KEY_BYTES);
  checkLength('nonce', nonce, AEAD_NONCE_BYTES);
  if (ciphertext.length < AEAD_TAG_BYTES) {
    throw new RangeError(`an AES-256-GCM ciphertext is at least ${AEAD_TAG_BYTES} bytes (the tag); got ${ciphertext.length}`);
  }
  const split = ciphertext.length - AEAD_TAG_BYTES;
  const decipher = nodeCrypto().createDecipheriv(ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
  decipher.setAuthTag(ciphertext.subarray(split));
  decipher.setAAD(aad);
  const plaintext = decipher.update(ciphertext.subarray(0, split));
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch (error) {
    // final() is where GCM checks the tag: the unauthenticated bytes from update() must not outlive it.
    plaintext.fill(0);
    throw new Error('AES-256-GCM authentication failed', { cause: error });
  }
}

function checkLength(what: string, bytes: Uint8Array, expected: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== expected) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new RangeError(`an AES-256-GCM ${what} is ${expected} bytes; got ${got}`);
  }
}
