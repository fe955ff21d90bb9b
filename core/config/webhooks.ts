/**
 * The `[[webhooks]]` tables of lattice.toml, checked once when the file is loaded: a unique name, an http(s) URL
 * without credentials, a list of announced event names (all of them when absent), where the signing secret comes
 * from, the body format and the retry schedule. Each refusal names the webhook and what to change.
 *
 * The secret's source is checked here (its syntax, and a literal `whsec_` key); an `env:` or `secret:` source is
 * resolved when the gate starts, which refuses to start without it (core/webhooks/keys.ts).
 */
import { PUBLIC_EVENT_TYPES, ledgerTypesOf, type PublicEventType } from '../events/types.ts';
import { LatticeError, describeError } from '../errors.ts';
import { decodeSigningSecret } from '../webhooks/signature.ts';

export type WebhookFormat = 'standard' | 'slack';

/** `env:NAME` (the gate's environment), `secret:NAME` (`lattice secrets set`), or the `whsec_` key itself. */
export type SecretSource = { readonly kind: 'env' | 'secret'; readonly name: string } | { readonly kind: 'literal'; readonly key: Buffer };

export interface WebhookConfig {
  readonly name: string;
  readonly url: string;
  /** Announced event names it receives. */
  readonly events: readonly PublicEventType[];
  /** The ledger event types behind `events` (what the outbox trigger matches). */
  readonly ledgerTypes: readonly string[];
  readonly secret: SecretSource;
  readonly format: WebhookFormat;
  /** Attempts before a message is dead. */
  readonly maxAttempts: number;
  /** The wait after the first failed attempt; it doubles after each further one, up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

export interface RawWebhook {
  name: string;
  url: string;
  secret: string;
  events?: string[];
  format?: WebhookFormat;
  max_attempts?: number;
  backoff?: string;
  max_backoff?: string;
}

export const WEBHOOK_DEFAULTS = { format: 'standard', max_attempts: 12, backoff: '5s', max_backoff: '1h' } as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

export function resolveWebhooks(raw: readonly RawWebhook[], file: string, duration: (value: string, key: string) => number): WebhookConfig[] {
  const seen = new Set<string>();
  return raw.map((w, i) => {
    const fail = (problem: string) => new LatticeError('CONFIG_INVALID', `${file}: webhook "${w.name}" (webhooks[${i}]): ${problem}`);
    if (seen.has(w.name)) throw fail('another webhook has the same name; names must be unique');
    seen.add(w.name);
    const events = w.events ?? PUBLIC_EVENT_TYPES;
    let ledgerTypes: string[];
    try {
      ledgerTypes = ledgerTypesOf(events);
    } catch (error) {
      throw fail(describeError(error));
    }
    if (events.length === 0) throw fail(`events is empty; list the events it should receive, or leave events out for all of them`);
    const backoffMs = duration(w.backoff ?? WEBHOOK_DEFAULTS.backoff, `webhooks[${i}].backoff`);
    const maxBackoffMs = duration(w.max_backoff ?? WEBHOOK_DEFAULTS.max_backoff, `webhooks[${i}].max_backoff`);
    if (backoffMs <= 0) throw fail('backoff must be longer than 0');
    if (maxBackoffMs < backoffMs) throw fail(`max_backoff (${w.max_backoff ?? WEBHOOK_DEFAULTS.max_backoff}) is shorter than backoff (${w.backoff ?? WEBHOOK_DEFAULTS.backoff})`);
    return {
      name: w.name,
      url: checkUrl(w.url, fail),
      events: [...new Set(events as PublicEventType[])],
      ledgerTypes: [...new Set(ledgerTypes)],
      secret: secretSource(w.secret, fail),
      format: w.format ?? WEBHOOK_DEFAULTS.format,
      maxAttempts: w.max_attempts ?? WEBHOOK_DEFAULTS.max_attempts,
      backoffMs,
      maxBackoffMs,
    };
  });
}

function checkUrl(text: string, fail: (problem: string) => LatticeError): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw fail(`url ${JSON.stringify(text)} is not an absolute URL; write it as https://host/path`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fail(`url must be http:// or https://, not ${url.protocol}//`);
  if (url.username !== '' || url.password !== '') throw fail('url must not carry credentials (user:password@); receivers authenticate lattice by the signature');
  return url.href;
}

function secretSource(text: string, fail: (problem: string) => LatticeError): SecretSource {
  const [kind, name = ''] = text.split(/:(.*)/s);
  if (kind === 'env') {
    if (!ENV_NAME.test(name)) throw fail(`secret env:${name} does not name an environment variable`);
    return { kind, name };
  }
  if (kind === 'secret') {
    if (!SECRET_NAME.test(name)) throw fail(`secret secret:${name} does not name a stored secret (lattice secrets set NAME)`);
    return { kind, name };
  }
  try {
    return { kind: 'literal', key: decodeSigningSecret(text) };
  } catch (error) {
    throw fail(`secret must be env:NAME, secret:NAME or a whsec_ key: ${describeError(error)}`);
  }
}
