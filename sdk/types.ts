/** The SDK's request options and the shapes of the gate's answers. */
import type { Credential } from './credential.ts';
import type { ConditionResult } from './errors.ts';
import type { TransportOptions } from './transport.ts';

/** The gate's answer about one action request. */
export type ActionResult =
  | { status: 'executed'; requestId: string; auditEventId: number; receiptId: string; output: unknown; policy: string | null; policies: string[]; conditions: ConditionResult[] }
  | { status: 'requested'; requestId: string; auditEventId: number; approvalId: string; planSha256: string; timeoutAt: string; policy: string | null; reason: string | null }
  | { status: 'denied'; requestId: string; auditEventId: number; denialReason: string; message: string; policy: string | null; policies: string[]; reason: string | null; conditions: ConditionResult[] }
  | { status: 'expired' | 'cancelled' | 'withdrawn'; requestId: string; approvalId: string; message: string }
  | { status: 'failed'; requestId: string; auditEventId: number; receiptId: string; error: { code: string; message: string } }
  | { status: 'interrupted'; requestId: string; receiptId: string; message: string };

export interface ExecuteOptions {
  readonly params?: Record<string, unknown>;
  /** Makes the call idempotent: a repeat returns the first answer and runs nothing twice (generated when absent). */
  readonly eventId?: string;
  readonly metadata?: Record<string, string>;
  /** Labels of data the agent has read (e.g. `secrets`), for policies on what may follow. */
  readonly dataAccessed?: string[];
}

export interface GateOptions extends ExecuteOptions {
  /** How often to ask whether a held request was decided (default 1 s). */
  readonly pollIntervalMs?: number;
  /** How long to wait for a human (default 15 minutes); then LatticeTimeoutError, and the request stays held. */
  readonly timeoutMs?: number;
  /** Called each time the request is found still held (for progress reporting). */
  readonly onWait?: (held: Extract<ActionResult, { status: 'requested' }>) => void;
  /**
   * Stops waiting. `waitForDecision` then rejects with the signal's reason and leaves the request as it is;
   * `gate` first withdraws a request that is still held (nobody would be left to receive its result).
   */
  readonly signal?: AbortSignal;
}

export interface CanIResult {
  readonly allowed: boolean;
  readonly needsApproval: boolean;
  readonly decision: 'allow' | 'hold' | 'deny';
  readonly denialReason: string | null;
  readonly message: string | null;
  readonly policy: string | null;
  readonly conditions: ConditionResult[];
  readonly planSha256: string;
}

export interface WhoAmI {
  readonly peerId: string;
  readonly name: string;
  readonly agentType: string;
  readonly workspaceId: string;
  readonly policyPreset: string;
  readonly leaseId: string;
  readonly expiresAt: string;
  readonly [more: string]: unknown;
}

export interface ActionInfo {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  readonly risk: 'low' | 'medium' | 'high' | 'critical';
  readonly tags: string[];
  /** JSON Schema of the action's params. */
  readonly requestSchema: Record<string, unknown>;
  /** Whether a policy in force could let this agent run it at all (listing only; every call is still decided). */
  readonly usable: boolean;
  /** Whether every policy that could let it through holds it for a human first. */
  readonly needsApproval: boolean;
  readonly sinks: { http: { host: string }[]; fs: unknown };
  readonly [more: string]: unknown;
}

export interface PolicyInfo {
  readonly id: string;
  readonly file: string;
  readonly effect: 'permit' | 'forbid';
  readonly approval: boolean;
  readonly reason: string | null;
  readonly text: string;
}

export interface AuditEvent {
  readonly seq: number;
  readonly ts: string;
  readonly type: string;
  readonly principal: string | null;
  readonly action: string | null;
  readonly decision: 'allow' | 'deny' | 'hold' | 'error' | null;
  readonly payload: Record<string, unknown>;
  readonly hash: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly events: number;
  readonly headHash: string | null;
  readonly lastCheckpointSeq: number | null;
  readonly unsignedTail: number;
  readonly failure: { code: string; seq: number; message: string } | null;
  readonly verifiedAt: string;
}

export interface DelegateOptions {
  /** Action patterns, each within this agent's own: `fs.read`, `github.*`. */
  readonly capabilities: string[];
  /** How long the sub-agent lives: whole seconds (`300`) or a duration (`'5m'`, `'1h'`); sent to the gate as given. */
  readonly ttl: number | string;
}

export interface DelegationInfo {
  readonly id: string;
  readonly parentId: string;
  readonly name: string;
  readonly capabilities: string[];
  readonly state: 'active' | 'expired' | 'ended';
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly endedAt: string | null;
  readonly endReason: string | null;
}

export interface Posture {
  readonly score: number;
  readonly components: { id: string; title: string; score: number; max: number; status: 'pass' | 'partial' | 'fail'; detail: string; fix: string | null }[];
  readonly computedAt: string;
}

export interface LatticeOptions extends TransportOptions {
  /** A credential, or the path of a credential file (default: `LATTICE_CREDENTIAL`). */
  readonly credential?: Credential | string;
}

export interface Subscription {
  /** Stops the stream; the callback is not called again. */
  close(): void;
  /** Settles when the subscription ends: resolves on close, rejects when the gate refuses to go on (e.g. revoked). */
  readonly closed: Promise<void>;
}
