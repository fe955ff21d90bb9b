/**
 * WireGuard keys: X25519 key pairs in exactly the form `wg genkey` and `wg pubkey` print them, standard base64 of
 * the raw 32 bytes (44 characters, one `=` of padding).
 *
 * Refuses, with INVALID_ARGUMENT, any private key that is not 44 characters of canonical standard base64 encoding
 * 32 bytes: no base64url, no whitespace or trailing newline, no missing padding. Error messages never repeat the
 * private key.
 */
import type { KeyObject } from 'node:crypto';
import { nodeCrypto } from './node.ts';
import { LatticeError } from '../errors.ts';

export interface WireGuardKeyPair {
  /** Standard base64 of the raw 32-byte private key, as `wg genkey` prints it (without the newline). */
  readonly privateKey: string;
  /** Standard base64 of the raw 32-byte public key, as `wg pubkey` prints it (without the newline). */
  readonly publicKey: string;
}

/**
 * DER prefix of a PKCS#8 PrivateKeyInfo for X25519 (RFC 8410): SEQUENCE { INTEGER 0, AlgorithmIdentifier
 * { OID 1.3.101.110 }, OCTET STRING { OCTET STRING (32 bytes) } }. Appending the raw key gives a complete DER key.
 */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** True when `text` is a WireGuard key: 44 characters of canonical standard base64 encoding exactly 32 bytes. */
export function isWireGuardKey(text: unknown): text is string {
  if (typeof text !== 'string' || text.length !== 44) return false;
  // Buffer's decoder skips characters it does not know and also accepts base64url; the round trip refuses both.
  const raw = Buffer.from(text, 'base64');
  return raw.length === 32 && raw.toString('base64') === text;
}

export function generateWireGuardKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = nodeCrypto().generateKeyPairSync('x25519');
  const raw = Buffer.from(jwkMember(privateKey, 'd'), 'base64url');
  // Clamp as `wg genkey` does (RFC 7748 §5). OpenSSL already stores clamped X25519 keys, so this pins the format
  // rather than changing the key; X25519 clamps the scalar itself, so the public key is the same either way.
  raw[0] = (raw[0] ?? 0) & 248;
  raw[31] = ((raw[31] ?? 0) & 127) | 64;
  return {
    privateKey: raw.toString('base64'),
    publicKey: Buffer.from(jwkMember(publicKey, 'x'), 'base64url').toString('base64'),
  };
}

/** Derives the public key from a base64 private key, as `wg pubkey` does. */
export function wireGuardPublicKey(privateKey: string): string {
  if (!isWireGuardKey(privateKey)) {
    throw new LatticeError(
      'INVALID_ARGUMENT',
      'a WireGuard private key must be 44 characters of standard base64 encoding 32 bytes, as `wg genkey` prints it (without the newline)',
    );
  }
  // Imported as PKCS#8 DER: a JWK import would need `x`, the public key this function exists to compute.
  const der = Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(privateKey, 'base64')]);
  const key = nodeCrypto().createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return Buffer.from(jwkMember(nodeCrypto().createPublicKey(key), 'x'), 'base64url').toString('base64');
}

function jwkMember(key: KeyObject, member: 'd' | 'x'): string {
  const value = key.export({ format: 'jwk' })[member];
  if (typeof value !== 'string') throw new Error(`X25519 JWK export without ${member}`);
  return value;
}
