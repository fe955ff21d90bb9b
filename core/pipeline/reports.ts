/**
 * Outcome reports: an agent closes the loop on an action it ran by saying how it went for it.
 *
 *   POST /api/v1/reports {auditEventId, status: success|failure|partial, message}
 *     → 201 {reportEventId, auditEventId, status}
 *
 * `auditEventId` is the ledger seq the gate answered with (`action.executed` or `action.failed`). Only the agent
 * that ran the action may report on it; the report is an `action.reported` event naming that seq, so the
 * receipt and the agent's account of the outcome sit side by side in the chain. Reports are statements, not
 * evidence of effects: they never change the original event, and an agent may report more than once (a
 * `partial` followed by a `success`), each one recorded.
 */
import { LatticeError } from '../errors.ts';
import { authenticateAgent, type AuthDeps } from '../identity/auth.ts';
import { statement } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Route } from '../server/http.ts';
import { validator } from '../server/validate.ts';

export const REPORT_STATUSES = ['success', 'failure', 'partial'] as const;

interface ReportBody {
  auditEventId: number;
  status: (typeof REPORT_STATUSES)[number];
  message: string;
}

const reportBody = validator<ReportBody>({
  type: 'object',
  additionalProperties: false,
  required: ['auditEventId', 'status', 'message'],
  properties: {
    auditEventId: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    status: { type: 'string', enum: [...REPORT_STATUSES] },
    message: { type: 'string', maxLength: 4096 },
  },
});

/** Ledger types an agent may report on: the outcome events of actions it ran. */
const REPORTABLE = new Set(['action.executed', 'action.failed']);

export function reportRoutes(ledger: Ledger, auth: AuthDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/reports',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const body = reportBody(await ctx.readBody());
        if (!body.message.isWellFormed()) throw new LatticeError('VALIDATION_FAILED', 'message is not well-formed Unicode');
        const original = statement(ledger.database, 'SELECT type, principal, action FROM events WHERE seq = ?').get(body.auditEventId) as
          | { type: string; principal: string | null; action: string | null }
          | undefined;
        // Another agent's event and no event at all answer alike, so a report cannot probe what others ran.
        if (original === undefined || original.principal !== peer.id) {
          throw new LatticeError('NOT_FOUND', `you ran no action recorded at audit event ${body.auditEventId}`);
        }
        if (!REPORTABLE.has(original.type)) {
          throw new LatticeError('VALIDATION_FAILED', `audit event ${body.auditEventId} is ${original.type}; reports are on action.executed or action.failed events`);
        }
        const { event } = await ledger.append({
          type: 'action.reported',
          principal: peer.id,
          action: original.action,
          payload: { auditEventId: body.auditEventId, status: body.status, message: body.message },
        });
        return { status: 201, body: { reportEventId: event.seq, auditEventId: body.auditEventId, status: body.status } };
      },
    },
  ];
}
