/**
 * `lattice export`: writes a portable bundle (events, checkpoints, receipts and the public key set) that
 * `lattice verify --bundle` checks offline. The format is documented in sources.ts. The bundle is written to a
 * temporary file and renamed into place, so a failed export never leaves a partial bundle behind.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KeySetDocument } from '../keys/keyset.ts';
import { BUNDLE_FORMAT, BUNDLE_VERSION, type BundleHeader } from './sources.ts';
import type { LedgerSource } from './verify.ts';

export interface ExportSummary {
  readonly file: string;
  readonly since: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly receipts: number;
  readonly head: { readonly seq: number; readonly hash: string | null };
}

export async function writeBundle(
  source: LedgerSource,
  keyset: KeySetDocument,
  file: string,
  onProgress?: (done: number, total: number | undefined) => void,
): Promise<ExportSummary> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  let open = true;
  let events = 0;
  let receipts = 0;
  let head: ExportSummary['head'] = { seq: source.firstSeq - 1, hash: null };
  try {
    // The source reads one snapshot, so its event count is exact; verify recounts everything anyway.
    const last = source.checkpoints[source.checkpoints.length - 1];
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      createdAt: new Date().toISOString(),
      since: source.firstSeq,
      events: source.expectedEvents ?? 0,
      lastCheckpoint: last === undefined ? null : { seq: last.seq, headHash: last.headHash },
      keyset,
    };
    writeSync(fd, `${JSON.stringify(header)}\n`);
    for (const checkpoint of source.checkpoints) writeSync(fd, `${JSON.stringify({ checkpoint })}\n`);
    for await (const chunk of source.chunks()) {
      let text = '';
      for (const entry of chunk) {
        text += `${JSON.stringify({ event: entry.event, receipts: entry.receipts })}\n`;
        receipts += entry.receipts.length;
        head = { seq: entry.event.seq, hash: entry.event.hash };
      }
      writeSync(fd, text);
      events += chunk.length;
      onProgress?.(events, source.expectedEvents);
    }
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, file);
  } catch (error) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  return { file, since: source.firstSeq, events, checkpoints: source.checkpoints.length, receipts, head };
}
