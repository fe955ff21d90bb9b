/** The SDK's errors. Every failure is a LatticeError with the gate's stable code; denials and timeouts have their own classes. */

export class LatticeError extends Error {
  override readonly name: string = 'LatticeError';
  constructor(
    /** The gate's code (`TOKEN_EXPIRED`, `VALIDATION_FAILED`, …) or the SDK's own (`GATE_UNREACHABLE`, `BAD_RESPONSE`). */
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    /** The HTTP status the gate answered with; 0 when no answer arrived. */
    readonly status = 0,
  ) {
    super(message);
  }
}

/** The gate decided against the action (a policy, a capability, a budget, or a human). */
export class LatticeDeniedError extends LatticeError {
  override readonly name = 'LatticeDeniedError';
  constructor(
    message: string,
    /** `NO_POLICY`, `CONDITIONS_DENIED`, `CAPABILITY_DENIED`, `BUDGET_EXHAUSTED`, `DENIED_BY_REVIEWER`, `APPROVAL_EXPIRED`, `APPROVAL_CANCELLED`, `APPROVAL_WITHDRAWN`, … */
    readonly reason: string,
    readonly policy: string | null,
    readonly conditions: readonly ConditionResult[],
    readonly approvalId: string | null,
  ) {
    super('DENIED', message, { reason, policy, conditions, approvalId }, 403);
  }
}

/** A held request was still waiting for a human when the caller's timeout passed; it stays held at the gate. */
export class LatticeTimeoutError extends LatticeError {
  override readonly name = 'LatticeTimeoutError';
  constructor(
    message: string,
    readonly approvalId: string | null,
  ) {
    super('TIMEOUT', message, { approvalId });
  }
}

/** One condition of a policy that decided a request: what it compared, what it expected, what it saw. */
export type ConditionResult =
  | { readonly policy: string; readonly field: string; readonly operator: string; readonly expected: unknown; readonly actual: unknown; readonly result: boolean | null }
  | { readonly policy: string; readonly expression: string; readonly result: boolean | null };
