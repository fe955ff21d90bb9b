/**
 * Standard Webhooks signatures (standardwebhooks.com): every delivery carries `webhook-id` (the message's id, the
 * same on every retry), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature: v1,<base64>`,
 * the HMAC-SHA256 of `<id>.<timestamp>.<body>` under the webhook's key. A key is written `whsec_<base64>`, as
 * the specification's libraries expect, and must decode to 24–64 bytes; anything else is refused, never used.
 */
import { hmacSha256 } from '../crypto/index.ts';

const PREFIX = 'whsec_';
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** How to make a key, for the messages that refuse one. */
export const NEW_SECRET_HINT = 'make one with: echo "whsec_$(openssl rand -base64 32)"';

/** The key bytes of a `whsec_<base64>` secret; throws RangeError saying what is wrong (never echoing the value). */
export function decodeSigningSecret(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new RangeError(`a webhook secret starts with ${PREFIX} followed by base64; ${NEW_SECRET_HINT}`);
  const encoded = secret.slice(PREFIX.length);
  if (!BASE64.test(encoded)) throw new RangeError(`a webhook secret is ${PREFIX} followed by padded standard base64; ${NEW_SECRET_HINT}`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new RangeError(`a webhook secret's key must be ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes, this one has ${key.length}; ${NEW_SECRET_HINT}`);
  }
  return key;
}

/** The three Standard Webhooks headers of one attempt to deliver `body` as message `id`. */
export function signedHeaders(key: Uint8Array, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const timestamp = String(timestampSeconds);
  const signature = hmacSha256(key, `${id}.${timestamp}.${body}`).toString('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
