/**
 * What a webhook receives for one ledger event. The standard body is `{type, timestamp, data}` as Standard Webhooks
 * suggests: `type` is the announced name (core/events/types.ts), `timestamp` the event's, and `data` the event as
 * the ledger holds it (seq, ledger type, principal, action, decision, payload, hash), so a receiver can check it
 * against `lattice audit` or an exported bundle. The Slack body is in slack.ts.
 */
import type { WebhookFormat } from '../config/webhooks.ts';
import { publicEventType } from '../events/types.ts';
import type { LedgerDatabase } from '../ledger/database.ts';
import type { LedgerEvent } from '../ledger/event.ts';
import { slackMessage } from './slack.ts';

export function messageBody(format: WebhookFormat, event: LedgerEvent, db: LedgerDatabase): string {
  switch (format) {
    case 'standard':
      return JSON.stringify(standardMessage(event));
    case 'slack':
      return JSON.stringify(slackMessage(event, db));
  }
}

export function standardMessage(event: LedgerEvent) {
  return {
    type: publicEventType(event.type) ?? event.type,
    timestamp: event.ts,
    data: {
      seq: event.seq,
      ledgerType: event.type,
      principal: event.principal,
      action: event.action,
      decision: event.decision,
      payload: JSON.parse(event.payload) as unknown,
      hash: event.hash,
    },
  };
}
