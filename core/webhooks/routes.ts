/**
 * The operator's view of webhooks, on the admin socket only: what `lattice status` shows per webhook (pending,
 * delivered and dead messages, the error that is failing it now, the newest dead letters), and
 * `POST /api/v1/admin/webhooks/:name/retry`, which sends a webhook's dead messages back to pending with a fresh
 * set of attempts and records `webhook.retried` with the count in the same commit.
 */
import type { WebhookConfig } from '../config/webhooks.ts';
import { LatticeError } from '../errors.ts';
import type { LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Route } from '../server/http.ts';
import type { Deliverer } from './deliverer.ts';
import { deadCount, outboxCounts, retryDead, type OutboxCounts } from './outbox.ts';

export interface WebhookStatus extends OutboxCounts {
  readonly name: string;
  /** Scheme, host and port only: a URL's path may be its credential. */
  readonly origin: string;
  readonly format: WebhookConfig['format'];
  readonly events: readonly string[];
}

export function webhookStatus(db: LedgerDatabase, webhooks: readonly WebhookConfig[]): WebhookStatus[] {
  return webhooks.map((w) => ({ name: w.name, origin: new URL(w.url).origin, format: w.format, events: [...w.events], ...outboxCounts(db, w.name) }));
}

export function webhookRoutes(ledger: Ledger, deliverer: Deliverer): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/admin/webhooks/:name/retry',
      on: ['admin'],
      async handle(ctx) {
        const name = ctx.params['name'] ?? '';
        if (!deliverer.options.webhooks.some((w) => w.config.name === name)) {
          throw new LatticeError('NOT_FOUND', `no webhook named ${JSON.stringify(name.slice(0, 64))} is configured; \`lattice status\` lists them`);
        }
        const retried = await retryAll(ledger, name);
        deliverer.kick(name);
        return { status: 200, body: { name, retried } };
      },
    },
  ];
}

/**
 * Sends every dead message of `webhook` back and records how many, exactly: the count is taken before the commit
 * and checked inside it, and a lane that made another message dead in between makes the commit roll back and the
 * count be taken again.
 */
async function retryAll(ledger: Ledger, webhook: string): Promise<number> {
  for (let round = 0; ; round++) {
    const count = deadCount(ledger.database, webhook);
    if (count === 0) return 0;
    try {
      await ledger.append(
        { type: 'webhook.retried', principal: 'operator', payload: { name: webhook, messages: count } },
        {
          write: (tx) => {
            if (retryDead(tx, webhook) !== count) throw new StaleCount();
          },
        },
      );
      return count;
    } catch (error) {
      if (!(error instanceof StaleCount) || round === 2) throw error;
    }
  }
}

class StaleCount extends Error {}
