/**
 * The credential file an enrolled agent holds (written by `lattice enroll`, mode 0600): its lease token, the
 * DPoP private key bound to it, and where the gate is. Read via `--credential FILE` or `LATTICE_CREDENTIAL`.
 * Parsed strictly; a file that is not a version-1 credential is refused with the reason.
 */
import { readFileSync } from 'node:fs';

export interface Credential {
  readonly version: 1;
  readonly peerId: string;
  readonly leaseId: string;
  readonly token: string;
  readonly alg: 'EdDSA' | 'ES256';
  readonly privateJwk: Record<string, string>;
  readonly publicJwk: Record<string, string>;
  readonly socketPath: string | null;
  readonly baseUrl: string;
  readonly expiresAt: string;
}

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

export function readCredential(file: string): Credential {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CredentialError(`cannot read the credential ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const c = value as Partial<Credential> | null;
  const str = (v: unknown) => typeof v === 'string' && v !== '';
  if (c === null || typeof c !== 'object' || c.version !== 1 || !str(c.peerId) || !str(c.token) || !str(c.baseUrl) || (c.alg !== 'EdDSA' && c.alg !== 'ES256')) {
    throw new CredentialError(`${file} is not a lattice credential (version 1); make one with \`lattice enroll --out FILE\``);
  }
  if (typeof c.privateJwk !== 'object' || typeof c.publicJwk !== 'object' || (c.socketPath !== null && !str(c.socketPath))) {
    throw new CredentialError(`${file} is not a lattice credential: keys or socket missing`);
  }
  return c as Credential;
}

/** What the gate answers to an enrollment (the fields a credential keeps). */
export interface EnrollmentReply {
  readonly peerId: string;
  readonly leaseId: string;
  readonly enrollmentToken: string;
  readonly expiresAt: string;
}

/** The credential for an enrollment of the Ed25519 key pair `keys`, reaching the gate at `socketPath`. */
export function credentialFor(reply: EnrollmentReply, keys: { publicJwk: Record<string, string>; privateJwk: Record<string, string> }, socketPath: string): Credential {
  return {
    version: 1, peerId: reply.peerId, leaseId: reply.leaseId, token: reply.enrollmentToken, alg: 'EdDSA',
    privateJwk: keys.privateJwk, publicJwk: keys.publicJwk, socketPath, baseUrl: 'http://localhost', expiresAt: reply.expiresAt,
  };
}
