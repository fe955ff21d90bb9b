/**
 * The `webhooks` table follows the configuration. The outbox trigger reads it, so whichever process appends an
 * event, the event gets a message for each webhook subscribed to its type; the trigger exists while the table has
 * a row (ledger/schema.ts). When the gate starts it adds, changes and removes rows until the table matches
 * `[[webhooks]]`, each change committed with its event:
 * `webhook.configured` for a new or changed webhook, `webhook.removed` (with how many messages were undelivered,
 * now dropped) for one no longer configured. A new webhook receives events from then on, not the ledger's past.
 *
 * The events record the URL's origin only: a URL's path can be its credential (Slack's incoming webhooks are),
 * and the ledger is evidence, not a secret store. The signing secret is never recorded.
 */
import { canonicalize } from '../canonical.ts';
import type { WebhookConfig } from '../config/webhooks.ts';
import { sha256Hex } from '../crypto/index.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { announceEvents } from '../ledger/schema.ts';
import { undelivered } from './outbox.ts';

interface Row {
  readonly name: string;
  readonly settings: string;
}

/** What a change of which is recorded: everything but the secret, and of the URL only its origin. */
function settingsOf(w: WebhookConfig) {
  return {
    name: w.name,
    origin: new URL(w.url).origin,
    events: [...w.events],
    format: w.format,
    maxAttempts: w.maxAttempts,
    backoffMs: w.backoffMs,
    maxBackoffMs: w.maxBackoffMs,
  };
}

/** Brings the `webhooks` table in line with the configuration; returns the names whose rows it wrote or removed. */
export async function syncSubscriptions(ledger: Ledger, webhooks: readonly WebhookConfig[]): Promise<string[]> {
  const db = ledger.database;
  const stored = new Map((statement(db, 'SELECT name, settings FROM webhooks').all() as Row[]).map((r) => [r.name, r.settings]));
  const prefix = `msg_${ledgerId(db).replace(/^ldg_/, '')}_`;
  const changed: string[] = [];
  for (const w of webhooks) {
    // Compared, not recorded: a new path on the same origin, or new ledger types behind the same names, is a change.
    const settings = canonicalize({ ...settingsOf(w), urlSha256: sha256Hex(w.url), ledgerTypes: [...w.ledgerTypes] });
    if (stored.get(w.name) === settings) continue;
    await ledger.append(
      { type: 'webhook.configured', principal: 'gate', payload: settingsOf(w) },
      {
        write: (tx) => {
          statement(
            tx,
            `INSERT INTO webhooks (name, types, message_prefix, settings) VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET types = excluded.types, settings = excluded.settings`,
          ).run(w.name, JSON.stringify(w.ledgerTypes), `${prefix}${w.name}_`, settings);
          announceEvents(tx, true);
        },
      },
    );
    changed.push(w.name);
  }
  const configured = new Set(webhooks.map((w) => w.name));
  for (const name of stored.keys()) {
    if (configured.has(name)) continue;
    await ledger.append(
      { type: 'webhook.removed', principal: 'gate', payload: { name, undelivered: undelivered(db, name) } },
      {
        write: (tx) => {
          statement(tx, 'DELETE FROM webhook_outbox WHERE webhook = ?').run(name);
          statement(tx, 'DELETE FROM webhooks WHERE name = ?').run(name);
          announceEvents(tx, (statement(tx, 'SELECT count(*) FROM webhooks', 'pluck').get() as number) > 0);
        },
      },
    );
    changed.push(name);
  }
  return changed;
}

/** The ledger's id, from its genesis event: part of every webhook-id, so a new ledger never repeats an old id. */
function ledgerId(db: LedgerDatabase): string {
  const payload = statement(db, 'SELECT payload FROM events WHERE seq = 1', 'pluck').get() as string | undefined;
  const id = payload === undefined ? undefined : (JSON.parse(payload) as { ledgerId?: unknown }).ledgerId;
  if (typeof id !== 'string') throw new Error('the ledger has no genesis event with a ledgerId');
  return id;
}
