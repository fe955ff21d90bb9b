/**
 * Worker thread for parallel verification: checks one seq range of a ledger database and posts its report.
 * It opens the file read-only itself, so nothing is copied between threads but the range and the key set.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseKeySet } from '../keys/keyset.ts';
import { openReadOnly } from './database.ts';
import { databaseSource } from './sources.ts';
import { verifyLedger } from './verify.ts';

export interface RangeTask {
  readonly file: string;
  readonly keyset: unknown;
  readonly since: number;
  readonly until: number;
}

export type RangeMessage = { readonly progress: number } | { readonly report: Awaited<ReturnType<typeof verifyLedger>> };

async function run(task: RangeTask): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('verify-worker must run in a worker thread');
  const db = openReadOnly(task.file);
  try {
    db.exec('BEGIN');
    const source = databaseSource(db, parseKeySet(task.keyset, 'key set'), task.since, task.until);
    const report = await verifyLedger(source, { onProgress: (done) => port.postMessage({ progress: done } satisfies RangeMessage) });
    port.postMessage({ report } satisfies RangeMessage);
  } finally {
    db.close();
  }
}

run(workerData as RangeTask).catch((error: unknown) => {
  // Rethrown outside the promise so the thread dies with an 'error' event the parent turns into a failure.
  setImmediate(() => {
    throw error;
  });
});
