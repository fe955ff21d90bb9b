/**
 * `lattice export`: writes a portable bundle (events, checkpoints, receipts and the public key set) that
 * `lattice verify --bundle` checks offline. The format is documented in sources.ts. The bundle is written to a
 * temporary file and renamed into place, so a failed export never leaves a partial bundle behind.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KeySetDocument } from '../keys/keyset.ts';
import type { Checkpoint } from './checkpoint.ts';
import { BUNDLE_FORMAT, BUNDLE_VERSION, type BundleHeader, type EventWithReceipts } from './sources.ts';

export interface ExportSummary {
  readonly file: string;
  readonly since: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly receipts: number;
  readonly head: { readonly seq: number; readonly hash: string | null };
}

/** What goes into a bundle: one consistent snapshot of a ledger from `since` on. */
export interface BundleContents {
  readonly keyset: KeySetDocument;
  readonly since: number;
  /** Every checkpoint at or after `since`, in seq order. */
  readonly checkpoints: readonly Checkpoint[];
  /** How many events `chunks` will yield. */
  readonly events: number;
  readonly chunks: Iterable<readonly EventWithReceipts[]>;
}

export function writeBundle(contents: BundleContents, file: string, onProgress?: (done: number, total: number) => void): ExportSummary {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  let open = true;
  let events = 0;
  let receipts = 0;
  let head: ExportSummary['head'] = { seq: contents.since - 1, hash: null };
  try {
    const last = contents.checkpoints[contents.checkpoints.length - 1];
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      createdAt: new Date().toISOString(),
      since: contents.since,
      events: contents.events,
      lastCheckpoint: last === undefined ? null : { seq: last.seq, headHash: last.headHash },
      keyset: contents.keyset,
    };
    writeSync(fd, `${JSON.stringify(header)}\n`);
    for (const checkpoint of contents.checkpoints) writeSync(fd, `${JSON.stringify({ checkpoint })}\n`);
    for (const chunk of contents.chunks) {
      let text = '';
      for (const { event, receipts: stored } of chunk) {
        text += `${JSON.stringify({ event, receipts: stored })}\n`;
        receipts += stored.length;
        head = { seq: event.seq, hash: event.hash };
      }
      writeSync(fd, text);
      events += chunk.length;
      onProgress?.(events, contents.events);
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
  return { file, since: contents.since, events, checkpoints: contents.checkpoints.length, receipts, head };
}
