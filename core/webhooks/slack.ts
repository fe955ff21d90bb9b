/**
 * The Slack-compatible body (`format = "slack"`): `{text, blocks}` as Slack's incoming webhooks take it. For
 * `approval.requested` it shows what a reviewer needs to decide: the action, the agent that asked, a summary of
 * the plan (from the request's row; the event holds only its hash), the plan's SHA-256 and the exact command that
 * approves it. Other events get one line.
 *
 * Paths, URLs and names in a plan come from the agent's params and are attacker-controlled: they are shown only
 * inside code spans, with Slack's control characters (&, <, >) escaped and backticks replaced, so they cannot
 * mention a channel, make a link or close the code span and pose as lattice's own text. The message is a notice:
 * `lattice approvals show` prints the plan exactly as it will run, and approval needs its hash.
 */
import { publicEventType } from '../events/types.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { LedgerEvent } from '../ledger/event.ts';
import type { Plan } from '../pipeline/decide.ts';
import type { Effect } from '../pipeline/effects.ts';
import { requestByApproval } from '../pipeline/requests.ts';

/** Slack refuses a section text over 3,000 characters; effects beyond this many are counted, not listed. */
const MAX_SECTION = 2900;
const MAX_EFFECTS = 20;

type Block = Record<string, unknown>;

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Block[];
}

export function slackMessage(event: LedgerEvent, db: LedgerDatabase): SlackMessage {
  const payload = JSON.parse(event.payload) as Record<string, unknown>;
  if (event.type === 'approval.requested' && typeof payload['approvalId'] === 'string') return approvalRequested(event, payload, payload['approvalId'], db);
  const name = publicEventType(event.type) ?? event.type;
  const line = `lattice ${name}${event.action === null ? '' : ` ${event.action}`}${event.principal === null ? '' : ` by ${event.principal}`}${event.decision === null ? '' : ` (${event.decision})`}`;
  return {
    text: line,
    blocks: [section(`*${escape(name)}*${event.action === null ? '' : ` ${code(event.action)}`}${event.principal === null ? '' : ` by ${code(event.principal)}`}${event.decision === null ? '' : ` — ${escape(event.decision)}`}`), context(event)],
  };
}

function approvalRequested(event: LedgerEvent, payload: Record<string, unknown>, approvalId: string, db: LedgerDatabase): SlackMessage {
  const row = requestByApproval(db, approvalId);
  const planSha256 = asString(payload['planSha256']) ?? row?.plan_sha256 ?? '';
  const agent = agentName(db, event.principal);
  const action = event.action ?? row?.action ?? '?';
  const plan = row?.plan === null || row?.plan === undefined ? null : (JSON.parse(row.plan) as Plan);
  const heldBy = row === undefined ? [] : (JSON.parse(row.policies) as string[]);
  const fields = [
    `*Agent*\n${code(agent)}`,
    `*Workspace*\n${row === undefined ? '-' : code(`${row.workspace} (${row.preset})`)}`,
    `*Held by*\n${heldBy.length === 0 ? '-' : code(heldBy.join(', '))}${row?.reason === null || row?.reason === undefined ? '' : `\n${escape(clip(row.reason, 300))}`}`,
    `*Expires*\n${escape(asString(payload['expiresAt']) ?? '-')}`,
  ];
  const approve = `lattice approvals approve ${approvalId} --plan-sha256 ${planSha256}`;
  return {
    text: `Approval requested: ${action} by ${agent} (${approvalId}); approve with: ${approve}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(`Approval requested: ${action}`, 150) } },
      { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
      section(`*Plan*\n${plan === null ? 'not found' : codeBlock(planSummary(plan))}`),
      section(`*Plan SHA-256*\n${code(planSha256)}`),
      section(`*Approve with*\n${codeBlock(approve)}\nReview the plan as it will run first: ${code(`lattice approvals show ${approvalId}`)}`),
      context(event),
    ],
  };
}

/** One line per effect: what it touches, never a secret's value (plans hold none), long values cut. */
export function planSummary(plan: Plan): string {
  const lines = plan.effects.slice(0, MAX_EFFECTS).map(describeEffect);
  if (plan.effects.length > MAX_EFFECTS) lines.push(`… and ${plan.effects.length - MAX_EFFECTS} more effects`);
  return lines.length === 0 ? '(no effects)' : lines.join('\n');
}

function describeEffect(effect: Effect): string {
  switch (effect.kind) {
    case 'http':
      return `${effect.method} ${clip(effect.url, 300)}${effect.body === null ? '' : ` (${Buffer.byteLength(effect.body)} bytes)`}${effect.secrets.length === 0 ? '' : ` with secrets ${effect.secrets.join(', ')}`}`;
    case 'fs.read':
      return `read ${clip(effect.path, 300)}`;
    case 'fs.write':
      return `write ${clip(effect.path, 300)} (${effect.bytes} bytes, sha256 ${effect.sha256})`;
  }
}

function agentName(db: LedgerDatabase, peerId: string | null): string {
  if (peerId === null) return '?';
  const name = statement(db, 'SELECT name FROM peers WHERE id = ?', 'pluck').get(peerId) as string | undefined;
  return name === undefined ? peerId : `${name} (${peerId})`;
}

function section(text: string): Block {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(text, MAX_SECTION) } };
}

function context(event: LedgerEvent): Block {
  return { type: 'context', elements: [{ type: 'mrkdwn', text: `lattice ledger seq ${event.seq}, ${escape(event.ts)}, hash ${code(event.hash.slice(0, 16))}…` }] };
}

/** Slack's three control characters as entities, as Slack asks of every text it formats. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** A code span that its content cannot close. */
function code(text: string): string {
  return `\`${escape(text).replaceAll('`', "'")}\``;
}

function codeBlock(text: string): string {
  // Cut after escaping, so the block (and its closing fence) stays within what Slack accepts.
  return `\`\`\`${clip(escape(text).replaceAll('`', "'"), MAX_SECTION - 200)}\`\`\``;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
