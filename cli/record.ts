/**
 * Operator events a command records in the ledger itself (no gate in between). Apart from cli/common.ts so that
 * a command that only needs its help text and flags does not load the ledger and SQLite at start.
 */
import { basename } from 'node:path';
import { sha256Hex } from '../core/crypto/index.ts';
import { isLatticeError } from '../core/errors.ts';
import type { HomePaths } from '../core/home.ts';
import type { EventDraft, LedgerEvent } from '../core/ledger/event.ts';
import { Ledger } from '../core/ledger/ledger.ts';
import { ONE_SHOT } from './common.ts';

/** Records one operator event in the home's ledger (safe beside a running gate: commits are serialised by SQLite). */
export function recordEvent(paths: HomePaths, draft: EventDraft): LedgerEvent {
  const ledger = Ledger.open(paths, ONE_SHOT);
  try {
    return ledger.appendNow({ principal: 'operator', ...draft }).event;
  } finally {
    ledger.close();
  }
}

/** Codes that mean "refused to install this file" (as opposed to a usage or I/O problem). */
const INSTALL_REFUSALS: ReadonlySet<string> = new Set(['COMPONENT_INVALID', 'SIGNATURE_MISSING', 'SIGNATURE_INVALID']);

/**
 * Runs an installation; when it is refused for what the file is or who signed it, `record`s `<kind>.refused` with
 * the hash of the refused bytes (read only then) before the error reaches the operator. A refused install through
 * a running gate is recorded by the gate as `request.refused`.
 */
export async function recordingRefusal<T>(record: (draft: EventDraft) => unknown, kind: 'provider' | 'action', file: string, bytes: () => Uint8Array, install: () => Promise<T>): Promise<T> {
  try {
    return await install();
  } catch (error) {
    if (isLatticeError(error) && INSTALL_REFUSALS.has(error.code)) {
      record({ type: `${kind}.refused`, principal: 'operator', decision: 'deny', payload: { file: basename(file), sha256: sha256Hex(bytes()), code: error.code, message: error.message.slice(0, 1024) } });
    }
    throw error;
  }
}
