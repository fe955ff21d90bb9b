/**
 * One error type for the whole project: a stable `code` per failure, a human message that names the problem and
 * the fix, and an optional cause. Callers branch on `code`, never on message text.
 *
 * Codes are grouped per domain. Wire (HTTP) status and CLI exit codes are mapped from codes in one place each
 * (cli/output.ts for exit codes), so an internal failure can never surface as a client-fault code.
 */

export type HomeErrorCode = 'HOME_UNUSABLE';
/** A path lattice will not read or write: a symbolic link, or not the kind of file expected, in a tree others can write. */
export type PathErrorCode = 'UNSAFE_PATH';
export type LedgerErrorCode =
  | 'LEDGER_NOT_FOUND'
  | 'LEDGER_OPEN_FAILED'
  | 'LEDGER_SCHEMA_TOO_NEW'
  | 'LEDGER_CLOSED'
  | 'LEDGER_INVALID_EVENT'
  | 'LEDGER_WRITE_FAILED'
  | 'BUNDLE_INVALID';
export type KeyErrorCode = 'KEYSET_NOT_FOUND' | 'KEYSET_INVALID' | 'KEY_INVALID';
export type UsageErrorCode = 'INVALID_ARGUMENT' | 'IO_ERROR';
export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNREADABLE';
export type GateErrorCode = 'GATE_NOT_RUNNING' | 'GATE_ALREADY_RUNNING' | 'GATE_START_FAILED' | 'GATE_UNREACHABLE';
/** Failures of a request to the gate; server/wire.ts maps each to its HTTP status. */
export type RequestErrorCode =
  | 'BAD_REQUEST'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'REQUEST_TIMEOUT'
  | 'VALIDATION_FAILED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'INTERNAL';
/** Identity: credentials, peers and DPoP proofs (the DPOP_* codes are core/identity/dpop.ts's). */
export type IdentityErrorCode =
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'PEER_NOT_FOUND'
  | 'TTL_TOO_LONG'
  | 'OVERLAY_EXHAUSTED'
  | 'DELEGATION_INVALID'
  | 'DPOP_MISSING'
  | 'DPOP_MALFORMED'
  | 'DPOP_BAD_TYP'
  | 'DPOP_BAD_ALG'
  | 'DPOP_BAD_SIGNATURE'
  | 'DPOP_KEY_MISMATCH'
  | 'DPOP_HTM_MISMATCH'
  | 'DPOP_HTU_MISMATCH'
  | 'DPOP_IAT_OUT_OF_WINDOW'
  | 'DPOP_ATH_MISMATCH'
  | 'DPOP_ATH_MISSING'
  | 'DPOP_REPLAY';

/** Actions: manifests and the registry. */
export type ActionErrorCode = 'MANIFEST_INVALID' | 'ACTION_NOT_FOUND' | 'ACTION_CONFLICT' | 'POLICY_INVALID';
/** Provider components and the publishers whose signatures the operator trusts. */
export type ProviderErrorCode = 'COMPONENT_INVALID' | 'COMPONENT_NOT_FOUND' | 'SIGNATURE_INVALID' | 'SIGNATURE_MISSING' | 'PUBLISHER_NOT_FOUND' | 'PUBLISHER_INVALID';

/** The sandbox: profiles, and a kernel or helper that cannot give the isolation asked for. */
export type SandboxErrorCode = 'PROFILE_INVALID' | 'PROFILE_NOT_FOUND' | 'SANDBOX_UNAVAILABLE' | 'SANDBOX_FAILED';

/**
 * The action pipeline: effects the host refused or could not perform, one-shot grants, approvals and idempotency.
 * (Policy and budget denials are not errors: they are 403 `denied` answers with a denialReason.)
 */
export type PipelineErrorCode =
  | 'SINK_DENIED'
  | 'EFFECT_FAILED'
  | 'PLAN_REFUSED'
  | 'PROVIDER_FAILED'
  | 'GRANT_CONSUMED'
  | 'GRANT_INVALID'
  | 'APPROVAL_NOT_FOUND'
  | 'APPROVAL_NOT_PENDING'
  | 'APPROVAL_WITHDRAWN'
  | 'PLAN_HASH_MISMATCH'
  | 'EVENT_ID_REUSED';

/** Secrets: the encrypted store (core/secrets/store.ts) and its master key. */
export type SecretErrorCode = 'SECRET_NOT_FOUND' | 'SECRET_INVALID_NAME' | 'SECRET_TOO_LARGE' | 'MASTER_KEY_INVALID' | 'SECRET_CORRUPT';

export type ErrorCode =
  | ActionErrorCode
  | ProviderErrorCode
  | SandboxErrorCode
  | PipelineErrorCode
  | SecretErrorCode
  | HomeErrorCode
  | PathErrorCode
  | LedgerErrorCode
  | KeyErrorCode
  | UsageErrorCode
  | ConfigErrorCode
  | GateErrorCode
  | RequestErrorCode
  | IdentityErrorCode;

export class LatticeError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LatticeError';
    this.code = code;
  }
}

export function isLatticeError(value: unknown): value is LatticeError {
  return value instanceof LatticeError;
}

/** A short description of any thrown value, for error messages (never includes stack traces). */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message;
  return String(value);
}
