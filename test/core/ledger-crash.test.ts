/**
 * Crash safety of the evidence ledger: a child process (test/fixtures/ledger-appender.ts) appends from several
 * concurrent producers and prints `<seq> <hash>` for every append the ledger has acknowledged as durable. It is
 * killed with SIGKILL at a random moment, over and over on the same home, so each restart has to continue the
 * chain left by a killed process. After every kill the ledger must open read-only, verify end to end, and hold
 * every event any child was ever told was durable, with exactly the hash it was told.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { openReadOnly } from '../../core/ledger/database.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { databaseSource } from '../../core/ledger/sources.ts';
import { verifyLedger, type VerifyReport } from '../../core/ledger/verify.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APPENDER = fileURLToPath(new URL('../fixtures/ledger-appender.ts', import.meta.url));

/** Each run but the first reopens a home a SIGKILL left behind; the final reopen happens in the test itself. */
const CRASHES = 20;
/** After the child's first acknowledgement, wait up to this long before killing it. */
const MAX_EXTRA_DELAY_MS = 150;
const FIRST_ACK_TIMEOUT_MS = 20_000;

interface Ack {
  readonly seq: number;
  readonly hash: string;
}

interface Parsed {
  readonly acks: Ack[];
  /** Bytes after the last newline: a line the child was writing when it died (never counted). */
  readonly partial: string;
}

const ACK_LINE = /^([1-9][0-9]*) ([0-9a-f]{64})$/;

/** Only complete lines (ending in \n) count; a complete line that is not `<seq> <hash>` is an error. */
function parseAcks(output: string): Parsed {
  const end = output.lastIndexOf('\n');
  const partial = output.slice(end + 1);
  if (end < 0) return { acks: [], partial };
  const acks = output
    .slice(0, end)
    .split('\n')
    .map((line, index): Ack => {
      const match = ACK_LINE.exec(line);
      const seq = match?.[1];
      const hash = match?.[2];
      if (seq === undefined || hash === undefined) {
        throw new Error(`child stdout line ${index + 1} is not "<seq> <hash>": ${JSON.stringify(line)}`);
      }
      return { seq: Number(seq), hash };
    });
  return { acks, partial };
}

interface Crash {
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from spawn to the first acknowledgement line. */
  readonly startupMs: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the appender on `home` until it has acknowledged something, waits `delayMs` more, then SIGKILLs it. */
async function appendThenKill(home: string, delayMs: number): Promise<Crash> {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, home], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const stderr = () => Buffer.concat(err).toString('utf8');
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let startupMs = Number.NaN;
  const firstAck = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no acknowledgement within ${FIRST_ACK_TIMEOUT_MS} ms`)), FIRST_ACK_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      if (Number.isNaN(startupMs) && chunk.includes(0x0a)) {
        startupMs = performance.now() - started;
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the appender exited (code ${code}, signal ${signal}) before acknowledging anything`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });

  try {
    await firstAck;
  } catch (error) {
    child.kill('SIGKILL');
    await closed;
    throw new Error(`${error instanceof Error ? error.message : String(error)}; appender stderr:\n${stderr()}`, { cause: error });
  }
  await sleep(delayMs);
  child.kill('SIGKILL');
  const { code, signal } = await closed; // 'close': the process is gone and its stdout is fully drained
  assert.equal(signal, 'SIGKILL', `the appender was not killed by us (exit code ${code}); stderr:\n${stderr()}`);
  assert.equal(stderr(), '', 'the appender wrote to stderr');
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: stderr(), startupMs };
}

interface Inspection {
  readonly report: VerifyReport;
  /** Acknowledged events that are absent or stored with a different hash (must be empty). */
  readonly lost: string[];
}

/** Opens the ledger read-only, verifies it and looks up every acknowledged event, all in one read snapshot. */
async function inspect(paths: HomePaths, acknowledged: ReadonlyMap<number, string>): Promise<Inspection> {
  const db = openReadOnly(paths.db);
  try {
    db.exec('BEGIN');
    const report = await verifyLedger(databaseSource(db, readKeySet(paths.keyset)));
    const stored = db.prepare('SELECT hash, type FROM events WHERE seq = ?');
    const lost: string[] = [];
    for (const [seq, hash] of acknowledged) {
      const row = stored.get(seq) as { hash: string; type: string } | undefined;
      if (row === undefined) lost.push(`seq ${seq}: missing`);
      else if (row.hash !== hash || row.type !== 'crash.test') lost.push(`seq ${seq}: stored ${row.type} ${row.hash}, acknowledged ${hash}`);
    }
    return { report, lost };
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
}

describe('ledger crash safety', () => {
  let root = '';

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lattice-crash-'));
  });

  after(() => {
    if (root !== '') rmSync(root, { recursive: true, force: true });
  });

  it('parses only complete acknowledgement lines', () => {
    const h = (c: string) => c.repeat(64);
    assert.deepEqual(parseAcks(''), { acks: [], partial: '' });
    assert.deepEqual(parseAcks('12 ab'), { acks: [], partial: '12 ab' });
    assert.deepEqual(parseAcks(`2 ${h('a')}\n3 ${h('b')}\n4 ${h('c').slice(0, 10)}`), {
      acks: [
        { seq: 2, hash: h('a') },
        { seq: 3, hash: h('b') },
      ],
      partial: `4 ${h('c').slice(0, 10)}`,
    });
    assert.deepEqual(parseAcks(`7 ${h('d')}\n`), { acks: [{ seq: 7, hash: h('d') }], partial: '' });
    assert.throws(() => parseAcks(`7 ${h('d')}\n\n`), /not "<seq> <hash>"/);
    assert.throws(() => parseAcks(`7 ${h('D')}\n`), /not "<seq> <hash>"/);
  });

  it('keeps every acknowledged event across 20 SIGKILLs at random moments', { timeout: 180_000 }, async (t) => {
    const home = join(root, 'home');
    const paths = homePaths(home);
    const acknowledged = new Map<number, string>();
    const startups: number[] = [];
    let previousHead = 0;
    let partialLines = 0;
    let committedUnacknowledged = 0;
    let last: VerifyReport | undefined;
    const began = performance.now();

    for (let crash = 1; crash <= CRASHES; crash++) {
      const delayMs = Math.floor(Math.random() * (MAX_EXTRA_DELAY_MS + 1));
      const where = `crash ${crash}/${CRASHES} (killed ${delayMs} ms after the first acknowledgement)`;
      const run = await appendThenKill(home, delayMs);
      startups.push(run.startupMs);

      const { acks, partial } = parseAcks(run.stdout);
      if (partial !== '') partialLines++;
      assert.ok(acks.length > 0, `${where}: the appender acknowledged nothing`);
      for (const { seq, hash } of acks) {
        assert.ok(seq > previousHead, `${where}: acknowledged seq ${seq}, but the head before this run was already ${previousHead}`);
        assert.equal(acknowledged.get(seq), undefined, `${where}: seq ${seq} was acknowledged twice`);
        acknowledged.set(seq, hash);
      }

      const { report, lost } = await inspect(paths, acknowledged);
      assert.ok(report.ok, `${where}: the ledger does not verify: ${JSON.stringify(report.failure)}`);
      assert.deepEqual(lost, [], `${where}: acknowledged events were lost (${lost.length} of ${acknowledged.size})`);
      assert.ok(report.lastSeq > previousHead, `${where}: the head did not grow (${previousHead} -> ${report.lastSeq})`);
      assert.equal(report.events, report.lastSeq, `${where}: verify saw ${report.events} events up to seq ${report.lastSeq}`);
      const maxAcked = Math.max(...acks.map((a) => a.seq));
      committedUnacknowledged += report.lastSeq - maxAcked;
      previousHead = report.lastSeq;
      last = report;
    }

    assert.ok(last !== undefined);
    // The home the last SIGKILL left behind must also open for writing and continue its chain.
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    try {
      assert.equal(ledger.head().seq, previousHead, 'reopening after the last crash moved the head');
      assert.equal(ledger.appendNow({ type: 'crash.test', payload: { reopened: true } }).event.seq, previousHead + 1);
    } finally {
      ledger.close();
    }
    const reopened = await inspect(paths, acknowledged);
    assert.ok(reopened.report.ok, `after reopening: the ledger does not verify: ${JSON.stringify(reopened.report.failure)}`);
    assert.deepEqual(reopened.lost, [], 'after reopening: acknowledged events were lost');
    assert.equal(reopened.report.unsignedTail, 0, 'close() did not checkpoint the head');
    // Sanity checks against a test that passes vacuously (a parser that finds nothing, receipts never issued).
    assert.ok(acknowledged.size >= 20, `only ${acknowledged.size} acknowledged events across ${CRASHES} crashes`);
    assert.ok(last.receipts > 0, 'no receipt was verified');
    assert.ok(last.checkpoints > 0, 'no checkpoint was verified');

    startups.sort((a, b) => a - b);
    const median = startups[Math.floor(startups.length / 2)] ?? Number.NaN;
    t.diagnostic(
      `${CRASHES} SIGKILLs in ${Math.round(performance.now() - began)} ms; ` +
        `${acknowledged.size} acknowledged events, all present; final head ${last.lastSeq}; ` +
        `${committedUnacknowledged} events committed but not yet acknowledged when killed; ` +
        `${last.checkpoints} checkpoints and ${last.receipts} receipts verified (unsigned tail ${last.unsignedTail}); ` +
        `${partialLines} kills cut an acknowledgement line; median time to first acknowledgement ${Math.round(median)} ms`,
    );
  });
});
