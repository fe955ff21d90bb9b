/**
 * The command line acting as an agent: a GateClient on the credential file given by `--credential` or
 * `LATTICE_CREDENTIAL`. The gate's refusals keep their codes (a GateError becomes a LatticeError with the same
 * code, so exit codes and --json errors read the same as for operator commands).
 */
import { LatticeError, type ErrorCode } from '../core/errors.ts';
import { GateClient, GateError } from '../sdk/client.ts';
import { readCredential } from '../sdk/credential.ts';

export const CREDENTIAL_HELP = 'agent credential file (default: $LATTICE_CREDENTIAL), made by `lattice enroll`';

export function agentClient(file: string | undefined): GateClient {
  const path = file ?? process.env['LATTICE_CREDENTIAL'];
  if (path === undefined || path === '') throw new LatticeError('INVALID_ARGUMENT', 'pass --credential FILE or set LATTICE_CREDENTIAL (made by `lattice enroll`)');
  try {
    return new GateClient(readCredential(path));
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', error instanceof Error ? error.message : String(error));
  }
}

/** Runs a client call, turning the gate's error answers into LatticeErrors with the same code. */
export async function asGate<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof GateError) throw new LatticeError((error.code === 'GATE_UNREACHABLE' ? 'GATE_NOT_RUNNING' : error.code) as ErrorCode, error.message);
    throw error;
  }
}
