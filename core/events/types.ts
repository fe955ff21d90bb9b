/**
 * The events lattice announces (realtime stream, webhooks) and the ledger events each stands for. Announcements
 * are views of ledger events, never a second record: every announced event has a ledger seq, and its id on the
 * stream and in webhooks is derived from that seq.
 */

export const PUBLIC_EVENTS = {
  'action.executed': ['action.executed'],
  'action.denied': ['action.denied'],
  'action.failed': ['action.failed'],
  'action.reported': ['action.reported'],
  'approval.requested': ['approval.requested'],
  'approval.decided': ['approval.approved', 'approval.denied', 'approval.expired', 'approval.cancelled', 'approval.withdrawn'],
  'delegation.created': ['delegation.created'],
  'delegation.expired': ['delegation.expired'],
  'delegation.revoked': ['delegation.revoked'],
  'policy.changed': ['policy.applied'],
  'actions.changed': ['action.registered', 'action.installed', 'provider.installed'],
  'anomaly.detected': ['anomaly.detected'],
  'enforcement.triggered': ['enforcement.triggered'],
} as const satisfies Record<string, readonly string[]>;

export type PublicEventType = keyof typeof PUBLIC_EVENTS;

/** Changes to what every agent may do: announced to every subscriber, whoever it is. */
export const GLOBAL_EVENTS: ReadonlySet<PublicEventType> = new Set(['policy.changed', 'actions.changed']);
export const PUBLIC_EVENT_TYPES = Object.keys(PUBLIC_EVENTS) as PublicEventType[];

const BY_LEDGER_TYPE = new Map<string, PublicEventType>(
  PUBLIC_EVENT_TYPES.flatMap((name) => PUBLIC_EVENTS[name].map((ledgerType) => [ledgerType, name] as const)),
);

/** The announced name of a ledger event type, or null when events of that type are not announced. */
export function publicEventType(ledgerType: string): PublicEventType | null {
  return BY_LEDGER_TYPE.get(ledgerType) ?? null;
}

/** The ledger types behind a list of announced names (for SQL filters); an unknown name is an error naming it. */
export function ledgerTypesOf(names: readonly string[]): string[] {
  return names.flatMap((name) => {
    if (!Object.hasOwn(PUBLIC_EVENTS, name)) {
      throw new RangeError(`unknown event type ${JSON.stringify(name)}; known: ${PUBLIC_EVENT_TYPES.join(', ')}`);
    }
    return [...PUBLIC_EVENTS[name as PublicEventType]];
  });
}
