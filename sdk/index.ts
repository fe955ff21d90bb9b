/**
 * `lattice/sdk`: the agent's client for the lattice gate. Imports no daemon code (a test checks the bundle).
 */
export { Lattice, DelegatedLattice } from './lattice.ts';
export type {
  ActionInfo,
  ActionResult,
  AuditEvent,
  CanIResult,
  DelegateOptions,
  DelegationInfo,
  ExecuteOptions,
  GateOptions,
  LatticeOptions,
  PolicyInfo,
  Posture,
  Subscription,
  VerifyResult,
  WhoAmI,
} from './types.ts';
export { LatticeError, LatticeDeniedError, LatticeTimeoutError } from './errors.ts';
export type { ConditionResult } from './errors.ts';
export type { LatticeEvent } from './events.ts';
export type { Credential } from './credential.ts';
