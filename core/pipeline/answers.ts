/**
 * What an agent is told about a request, in one place: the HTTP status and body for each outcome. The same body
 * answers the execute call, a repeat with the same eventId, and a poll of the approval.
 *
 *   200 executed    {status, requestId, auditEventId, receiptId, output, policy, policies, policyHash, conditions}
 *   202 requested   {status, requestId, approvalId, planSha256, timeoutAt, policy, reason, auditEventId}
 *   403 denied      {status, requestId, denialReason, policy, policies, reason, conditions, message, auditEventId}
 *   410 expired / cancelled / withdrawn   the approval ended without a decision to run
 *   502 failed      the host could not perform an effect (receiptId says what was observed)
 *   500 interrupted the gate stopped while the request ran; it is never re-run automatically
 */
import type { JsonObject, JsonValue } from '../canonical.ts';
import type { ConditionResult } from '../policy/engine.ts';

export interface Answer {
  readonly status: number;
  readonly body: JsonObject;
}

export type DenialReason =
  | 'CONDITIONS_DENIED'
  | 'NO_POLICY'
  | 'DENIED_BY_REVIEWER'
  | 'POLICY_TAMPERED'
  | 'BUDGET_EXHAUSTED'
  | 'SINK_DENIED'
  | 'CAPABILITY_DENIED'
  | 'POLICY_ERROR'
  | 'REQUEST_INVALID';

export interface PolicyOutcome {
  readonly policies: readonly string[];
  readonly reason: string | null;
  readonly policyHash: string | null;
  readonly conditions: readonly ConditionResult[];
}

const policyFields = (p: PolicyOutcome): JsonObject => ({
  policy: p.policies[0] ?? null,
  policies: [...p.policies],
  policyHash: p.policyHash,
  reason: p.reason,
  conditions: p.conditions as unknown as JsonValue[],
});

export function executedAnswer(requestId: string, auditEventId: number, receiptId: string, output: JsonValue, policy: PolicyOutcome, approvalId: string | null): Answer {
  return { status: 200, body: { status: 'executed', requestId, approvalId, auditEventId, receiptId, output, ...policyFields(policy) } };
}

export function requestedAnswer(requestId: string, auditEventId: number, approvalId: string, planSha256: string, timeoutAt: number, policy: PolicyOutcome): Answer {
  return { status: 202, body: { status: 'requested', requestId, approvalId, planSha256, timeoutAt: new Date(timeoutAt).toISOString(), auditEventId, ...policyFields(policy) } };
}

export function deniedAnswer(requestId: string, auditEventId: number, denialReason: DenialReason, message: string, policy: PolicyOutcome, receiptId: string | null = null): Answer {
  return { status: 403, body: { status: 'denied', requestId, denialReason, message, auditEventId, receiptId, ...policyFields(policy) } };
}

export function endedAnswer(state: 'expired' | 'cancelled' | 'withdrawn', requestId: string, approvalId: string, auditEventId: number, message: string): Answer {
  return { status: 410, body: { status: state, requestId, approvalId, auditEventId, message } };
}

export function failedAnswer(requestId: string, auditEventId: number, receiptId: string, error: { code: string; message: string }): Answer {
  return { status: 502, body: { status: 'failed', requestId, auditEventId, receiptId, error } };
}

export function interruptedAnswer(requestId: string, auditEventId: number, receiptId: string): Answer {
  return {
    status: 500,
    body: { status: 'interrupted', requestId, auditEventId, receiptId, message: 'the gate stopped while this request ran; its effects may or may not have happened, and it is never re-run automatically' },
  };
}
