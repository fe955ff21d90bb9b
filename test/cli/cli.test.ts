/** The command line as a user meets it: help, exit codes, output formats, and hostile text in ledger fields. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { printableLines } from '../../cli/output.ts';
import { lattice, latticeJson, tempDir } from '../helpers.ts';

const COMMANDS = [['init'], ['verify'], ['export'], ['audit'], ['keys', 'list'], ['keys', 'rotate']];
let home: HomePaths;

before(async () => {
  home = homePaths(join(tempDir(), 'home'));
  const ledger = Ledger.open(home, { checkpointIntervalMs: 0 });
  await ledger.append({ type: 'test.hostile', principal: '=2+3', action: 'echo', decision: 'deny', payload: { a: '\u009b2J\u001b[31mred', formula: '=HYPERLINK("http://x")' } });
  for (let i = 0; i < 5; i++) await ledger.append({ type: 'test.event', principal: 'agent-2', decision: 'allow', payload: { i } });
  ledger.close();
});

describe('lattice CLI', () => {
  it('prints --help with an example for every command', () => {
    for (const command of COMMANDS) {
      const { status, stdout } = lattice([...command, '--help']);
      assert.equal(status, 0, command.join(' '));
      assert.match(stdout, /Examples?:\n\s+\$ lattice /, command.join(' '));
    }
  });

  it('prints its version', () => {
    const { status, stdout } = lattice(['--version']);
    assert.equal(status, 0);
    assert.match(stdout, /^\d+\.\d+\.\d+ \(/);
  });

  it('exits 2 on usage errors and names the problem', () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command/],
      [['audit', '--bogus'], /unknown option/],
      [['audit', '--home', home.root, '--limit', 'lots'], /--limit must be an integer/],
      [['audit', '--home', home.root, '--decision', 'maybe'], /allow, deny, hold, error/],
      [['audit', '--home', home.root, '--since', 'yesterday'], /ISO 8601/],
      [['audit', '--home', home.root, '--cursor', 'garbage'], /cursor/],
      [['export', '--home', home.root], /--out/],
      [['verify', '--home', home.root, '--db', home.db], /cannot be used with/],
      [['audit', '--home', join(home.root, 'missing')], /no ledger at/],
    ];
    for (const [args, message] of cases) {
      const { status, stderr } = lattice(args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message, args.join(' '));
    }
  });

  it('reports errors as JSON with a stable code under --json', () => {
    const { status, json } = latticeJson<{ error: { code: string; message: string } }>(['audit', '--home', join(home.root, 'missing')]);
    assert.equal(status, 2);
    assert.equal(json.error.code, 'LEDGER_NOT_FOUND');
  });

  it('keeps the line breaks an error means, on a terminal and in --json', () => {
    const policy = join(tempDir(), 'bad.cedar');
    writeFileSync(policy, 'permit(principal, action, resource) when { x };\n');
    const text = lattice(['policy', 'apply', policy, '--home', join(tempDir(), 'home')]);
    assert.equal(text.status, 2, text.stderr);
    assert.match(text.stderr, /^lattice: policy refused:\n {2}bad\.cedar:1:\d+: invalid variable: x/);
    assert.ok(!text.stderr.includes('\\n'), `no literal \\n: ${text.stderr}`);
    const json = latticeJson<{ error: { code: string; message: string } }>(['policy', 'apply', policy, '--home', join(tempDir(), 'home')]);
    assert.equal(json.json.error.code, 'POLICY_INVALID');
    assert.match(json.json.error.message, /^policy refused:\nbad\.cedar:1:/);
  });

  it('escapes every other control character of a multi-line message', () => {
    assert.equal(printableLines('first\r\nsecond \u001b[2J\tthird\u2028fourth\n'), 'first\n  second \\u001b[2J\\tthird\\u2028fourth\n  ');
    assert.equal(printableLines('notes\u202etxt.exe\u2066'), 'notes\\u202etxt.exe\\u2066', 'bidirectional controls are escaped');
  });

  it('init is idempotent and reports what it found', () => {
    const dir = join(tempDir(), 'fresh');
    const first = latticeJson<{ created: boolean; keyId: string; head: { seq: number } }>(['init', '--home', dir]);
    assert.equal(first.status, 0);
    assert.equal(first.json.created, true);
    const second = latticeJson<{ created: boolean; keyId: string }>(['init', '--home', dir]);
    assert.equal(second.json.created, false);
    assert.equal(second.json.keyId, first.json.keyId);
    assert.equal(lattice(['verify', '--home', dir]).status, 0);
  });

  it('honours LATTICE_HOME', () => {
    const { status, json } = latticeJson<{ events: unknown[] }>(['audit', '--limit', '1'], { LATTICE_HOME: home.root });
    assert.equal(status, 0);
    assert.equal(json.events.length, 1);
  });
});

describe('lattice audit', () => {
  it('lists newest first and pages with the printed cursor', () => {
    const page1 = latticeJson<{ events: { seq: number }[]; nextCursor: string }>(['audit', '--home', home.root, '--limit', '4']);
    assert.deepEqual(page1.json.events.map((e) => e.seq), [7, 6, 5, 4]);
    const page2 = latticeJson<{ events: { seq: number }[]; nextCursor: string | null }>(['audit', '--home', home.root, '--limit', '4', '--cursor', page1.json.nextCursor]);
    assert.deepEqual(page2.json.events.map((e) => e.seq), [3, 2, 1]);
    assert.equal(page2.json.nextCursor, null);
    const table = lattice(['audit', '--home', home.root, '--limit', '4']);
    assert.match(table.stderr, /more: lattice audit --cursor \S+/);
  });

  it('filters, and returns the payload as JSON', () => {
    const { json } = latticeJson<{ events: { seq: number; type: string; payload: { a: string } }[] }>(['audit', '--home', home.root, '--decision', 'deny']);
    assert.equal(json.events.length, 1);
    assert.equal(json.events[0]?.type, 'test.hostile');
    assert.equal(json.events[0]?.payload.a, '\u009b2J\u001b[31mred');
  });

  it('never writes terminal control characters from ledger fields to a table', () => {
    const { status, stdout } = lattice(['audit', '--home', home.root, '--type', 'test.hostile']);
    assert.equal(status, 0);
    assert.ok(!stdout.includes('\u001b') && !stdout.includes('\u009b'), 'no ESC or CSI reaches the terminal');
    assert.match(stdout, /\\u009b2J/);
  });

  it('writes CSV that a spreadsheet will not run as a formula', () => {
    const { stdout } = lattice(['audit', '--home', home.root, '--type', 'test.hostile', '--format', 'csv']);
    const [header, row] = stdout.trim().split('\n');
    assert.equal(header, 'seq,ts,type,principal,action,decision,payload,hash');
    // The agent-chosen principal "=2+3" is neutralised with a leading quote (and quoted, since it holds one).
    assert.match(row ?? '', /^2,[^,]+,test\.hostile,"'=2\+3",echo,deny,/);
    const plain = lattice(['audit', '--home', home.root, '--principal', 'agent-2', '--limit', '1', '--format', 'csv']).stdout.trim().split('\n');
    assert.match(plain[1] ?? '', /^7,/);
  });

  it('writes one JSON object per line with --format jsonl', () => {
    const lines = lattice(['audit', '--home', home.root, '--format', 'jsonl']).stdout.trim().split('\n');
    assert.equal(lines.length, 7);
    for (const line of lines) assert.equal(typeof (JSON.parse(line) as { seq: number }).seq, 'number');
  });
});

describe('lattice keys', () => {
  it('rotates and lists keys, and the ledger still verifies', () => {
    const dir = join(tempDir(), 'keys-home');
    assert.equal(lattice(['init', '--home', dir]).status, 0);
    const rotated = latticeJson<{ previousKeyId: string; keyId: string; seq: number }>(['keys', 'rotate', '--home', dir]);
    assert.equal(rotated.status, 0);
    assert.equal(rotated.json.seq, 2);
    const listed = latticeJson<{ active: string; keys: { keyId: string; retiredAt: string | null }[] }>(['keys', 'list', '--home', dir]);
    assert.equal(listed.json.active, rotated.json.keyId);
    assert.deepEqual(listed.json.keys.map((k) => k.keyId), [rotated.json.previousKeyId, rotated.json.keyId]);
    assert.equal(lattice(['verify', '--home', dir]).status, 0);
  });

  it('refuses to rotate where there is no ledger', () => {
    const { status, stderr } = lattice(['keys', 'rotate', '--home', join(tempDir(), 'none')]);
    assert.equal(status, 2);
    assert.match(stderr, /lattice init/);
  });
});
