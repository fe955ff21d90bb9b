/**
 * Bearer secrets lattice issues (operator tokens, workspace enrollment tokens, agent leases):
 *
 *   lt1.<id>.<secret>      id = the row that holds it (e.g. tok_…, lease_…), secret = 256 random bits, base64url
 *
 * Only SHA-256(secret) is stored. A presented credential is parsed strictly, its row found by id, and the hash
 * compared in constant time; a credential that does not parse is refused without touching the database. The
 * whole string is shown once, when it is made, and never logged.
 */
import { constantTimeEqual, randomId, randomToken, sha256Hex } from '../crypto/index.ts';

const FORMAT = /^lt1\.((?:tok|lease)_[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export interface IssuedCredential {
  readonly id: string;
  /** The full credential, to hand to its holder once. */
  readonly secret: string;
  /** What is stored. */
  readonly hash: string;
}

export function issueCredential(prefix: 'tok' | 'lease'): IssuedCredential {
  const id = randomId(prefix);
  const secret = randomToken(32);
  return { id, secret: `lt1.${id}.${secret}`, hash: sha256Hex(secret) };
}

/** The id and secret hash of a well-formed credential, or undefined for anything else (attacker-controlled). */
export function parseCredential(presented: string): { id: string; hash: string } | undefined {
  if (presented.length > 128) return undefined;
  const m = FORMAT.exec(presented);
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  return { id: m[1], hash: sha256Hex(m[2]) };
}

export function credentialMatches(presentedHash: string, storedHash: string): boolean {
  return constantTimeEqual(presentedHash, storedHash);
}
