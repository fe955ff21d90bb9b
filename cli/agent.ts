/**
 * The command line acting as an agent: the SDK's Lattice client on the credential file given by `--credential`
 * or `LATTICE_CREDENTIAL`, so the CLI and agents share one client. The gate's refusals keep their codes (an SDK
 * LatticeError becomes the CLI's LatticeError with the same code, so exit codes and --json errors read the same
 * as for operator commands).
 */
import { LatticeError, type ErrorCode } from '../core/errors.ts';
import { Lattice } from '../sdk/lattice.ts';
import { LatticeError as SdkError } from '../sdk/errors.ts';

export const CREDENTIAL_HELP = 'agent credential file (default: $LATTICE_CREDENTIAL), made by `lattice enroll`';

/** The CLI answers at once by default: one attempt, no backoff (a person re-runs the command). */
export function agentClient(file: string | undefined, options: { retries?: number } = {}): Lattice {
  const path = file ?? process.env['LATTICE_CREDENTIAL'];
  if (path === undefined || path === '') throw new LatticeError('INVALID_ARGUMENT', 'pass --credential FILE or set LATTICE_CREDENTIAL (made by `lattice enroll`)');
  try {
    return new Lattice({ credential: path, retries: options.retries ?? 0 });
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', error instanceof Error ? error.message : String(error));
  }
}

/** Runs a client call, turning the gate's error answers into LatticeErrors with the same code. */
export async function asGate<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof SdkError) throw new LatticeError((error.code === 'GATE_UNREACHABLE' ? 'GATE_NOT_RUNNING' : error.code) as ErrorCode, error.message);
    throw error;
  }
}
