/**
 * The one place failures become HTTP: `{ "error": { "code", "message" } }` with the status below. The table is
 * total over ErrorCode (the compiler refuses a new code without a status), and anything that is not a
 * LatticeError is an internal failure: 500 `INTERNAL` with a generic message, never a client-fault code and
 * never the internal detail.
 */
import { isLatticeError, type ErrorCode } from '../errors.ts';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  DPOP_MISSING: 401,
  DPOP_MALFORMED: 401,
  DPOP_BAD_TYP: 401,
  DPOP_BAD_ALG: 401,
  DPOP_BAD_SIGNATURE: 401,
  DPOP_KEY_MISMATCH: 401,
  DPOP_HTM_MISMATCH: 401,
  DPOP_HTU_MISMATCH: 401,
  DPOP_IAT_OUT_OF_WINDOW: 401,
  DPOP_ATH_MISMATCH: 401,
  DPOP_ATH_MISSING: 401,
  DPOP_REPLAY: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  NOT_FOUND: 404,
  PEER_NOT_FOUND: 404,
  TTL_TOO_LONG: 400,
  DELEGATION_INVALID: 403,
  SECRET_NOT_FOUND: 404,
  MANIFEST_INVALID: 400,
  POLICY_INVALID: 400,
  ACTION_NOT_FOUND: 404,
  ACTION_CONFLICT: 409,
  COMPONENT_INVALID: 400,
  COMPONENT_NOT_FOUND: 404,
  SIGNATURE_INVALID: 400,
  SIGNATURE_MISSING: 400,
  PUBLISHER_NOT_FOUND: 404,
  PUBLISHER_INVALID: 400,
  PROFILE_INVALID: 400,
  PROFILE_NOT_FOUND: 404,
  SINK_DENIED: 403,
  PLAN_REFUSED: 400,
  GRANT_CONSUMED: 409,
  APPROVAL_NOT_FOUND: 404,
  APPROVAL_NOT_PENDING: 409,
  APPROVAL_WITHDRAWN: 409,
  PLAN_HASH_MISMATCH: 409,
  EVENT_ID_REUSED: 409,
  SECRET_INVALID_NAME: 400,
  SECRET_TOO_LARGE: 413,
  MASTER_KEY_INVALID: 500,
  SECRET_CORRUPT: 500,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // Everything below is the gate's own failure (or an upstream's), whatever caused it.
  EFFECT_FAILED: 502,
  PROVIDER_FAILED: 500,
  GRANT_INVALID: 500,
  INTERNAL: 500,
  SANDBOX_UNAVAILABLE: 500,
  SANDBOX_FAILED: 500,
  IO_ERROR: 500,
  HOME_UNUSABLE: 500,
  UNSAFE_PATH: 500,
  LEDGER_NOT_FOUND: 500,
  LEDGER_OPEN_FAILED: 500,
  LEDGER_SCHEMA_TOO_NEW: 500,
  LEDGER_CLOSED: 503,
  LEDGER_INVALID_EVENT: 500,
  LEDGER_WRITE_FAILED: 503,
  BUNDLE_INVALID: 500,
  KEYSET_NOT_FOUND: 500,
  KEYSET_INVALID: 500,
  KEY_INVALID: 500,
  CONFIG_INVALID: 500,
  CONFIG_UNREADABLE: 500,
  GATE_NOT_RUNNING: 503,
  GATE_ALREADY_RUNNING: 500,
  GATE_START_FAILED: 500,
  GATE_UNREACHABLE: 502,
  OVERLAY_EXHAUSTED: 503,
};

export interface WireError {
  readonly status: number;
  readonly body: { readonly error: { readonly code: string; readonly message: string } };
  /** True when the caller was refused (4xx); false for the gate's own failures. */
  readonly refusal: boolean;
}

/** Failures (5xx) whose message is the caller's to read and the ledger's to keep: it names a cause, no paths. */
export const PUBLIC_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PROVIDER_FAILED']);

export function toWireError(error: unknown): WireError {
  if (isLatticeError(error)) {
    const status = STATUS[error.code];
    const internal = status >= 500;
    // A 5xx names its code but keeps internal detail (paths, driver messages) off the wire, unless its message is
    // public (a provider's deadline, trap or bad output is the action's failure, and says which).
    const message = internal && !PUBLIC_FAILURES.has(error.code) ? `the gate could not complete the request (${error.code})` : error.message;
    return { status, body: { error: { code: error.code, message } }, refusal: !internal };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'the gate could not complete the request (INTERNAL)' } }, refusal: false };
}

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}
