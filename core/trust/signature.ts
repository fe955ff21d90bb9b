/**
 * Publisher signatures over provider components and action manifests: a detached JSON document beside the file
 * (`<file>.sig`). A publisher is an Ed25519 key; the operator decides which publishers to trust (publishers.ts).
 *
 *   {"v": 1, "kind": "component" | "manifest", "sha256": "<hex of the file's bytes>",
 *    "publisher": "<key id: RFC 7638 thumbprint>", "publicKey": "<raw key, base64url>", "signature": "<base64url>"}
 *
 * The signature covers `lattice-signature-v1\n` + JCS({kind, sha256}): the kind is signed so a signed manifest can
 * never pass as a signed component. Verification recomputes the hash from the actual bytes, never trusting the
 * document's claim.
 */
import { canonicalize } from '../canonical.ts';
import { ed25519Thumbprint, loadEd25519PrivateKey, loadEd25519PublicKey, sha256Hex, signEd25519, verifyEd25519 } from '../crypto/index.ts';

export type SignedKind = 'component' | 'manifest';

export interface SignatureDocument {
  readonly v: 1;
  readonly kind: SignedKind;
  readonly sha256: string;
  readonly publisher: string;
  readonly publicKey: string;
  readonly signature: string;
}

export interface TrustedKey {
  readonly name: string;
  readonly keyId: string;
  readonly publicKey: string;
}

export type SignatureCheck = { readonly ok: true; readonly publisher: TrustedKey; readonly sha256: string } | { readonly ok: false; readonly sha256: string; readonly message: string };

function signedMessage(kind: SignedKind, sha256: string): string {
  return `lattice-signature-v1\n${canonicalize({ kind, sha256 })}`;
}

export function signBytes(bytes: Uint8Array, kind: SignedKind, privateKeyPem: string): SignatureDocument {
  const key = loadEd25519PrivateKey(privateKeyPem);
  const sha256 = sha256Hex(bytes);
  return { v: 1, kind, sha256, publisher: key.keyId, publicKey: key.publicKey, signature: signEd25519(key.key, signedMessage(kind, sha256)) };
}

/** Parses a signature document; null when it is not one (the caller names the file in its message). */
export function parseSignature(text: string): SignatureDocument | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null; // not JSON: not a signature document, reported by the caller with the file's name
  }
  if (typeof doc !== 'object' || doc === null) return null;
  const d = doc as Record<string, unknown>;
  const strings = ['sha256', 'publisher', 'publicKey', 'signature'].every((k) => typeof d[k] === 'string' && (d[k]).length <= 256);
  if (d['v'] !== 1 || (d['kind'] !== 'component' && d['kind'] !== 'manifest') || !strings) return null;
  return d as unknown as SignatureDocument;
}

/** Does `doc` sign exactly these bytes, as this kind, by one of the trusted keys? */
export function checkSignature(bytes: Uint8Array, kind: SignedKind, doc: SignatureDocument, trusted: readonly TrustedKey[]): SignatureCheck {
  const sha256 = sha256Hex(bytes);
  if (doc.kind !== kind) return { ok: false, sha256, message: `the signature is for a ${doc.kind}, not a ${kind}` };
  if (doc.sha256 !== sha256) return { ok: false, sha256, message: `the signature is for other bytes (sha256 ${doc.sha256.slice(0, 16)}…, the file is ${sha256.slice(0, 16)}…)` };
  const key = trusted.find((k) => k.keyId === doc.publisher);
  if (key === undefined) return { ok: false, sha256, message: `publisher ${doc.publisher} is not trusted; \`lattice publishers add\` trusts a publisher key` };
  if (key.publicKey !== doc.publicKey || ed25519Thumbprint(key.publicKey) !== key.keyId) return { ok: false, sha256, message: `the signature's key does not match trusted publisher ${key.name}` };
  if (!verifyEd25519(loadEd25519PublicKey(key.publicKey), signedMessage(kind, sha256), doc.signature)) return { ok: false, sha256, message: `the signature by ${key.name} does not verify` };
  return { ok: true, publisher: key, sha256 };
}

/** `checkSignature` over the text of a `.sig` file, which may not be a signature document at all. */
export function checkSignatureText(bytes: Uint8Array, kind: SignedKind, text: string, trusted: readonly TrustedKey[]): SignatureCheck {
  const doc = parseSignature(text);
  if (doc === null) return { ok: false, sha256: sha256Hex(bytes), message: 'its .sig file is not a lattice signature document' };
  return checkSignature(bytes, kind, doc, trusted);
}
