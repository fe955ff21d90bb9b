import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { COMMANDS, buildProgram } from '../../cli/main.ts';

test('the lazy command table names exactly the top-level commands each module registers', async () => {
  for (const [names, load] of COMMANDS) {
    const program = new Command('lattice').enablePositionalOptions();
    (await load())(program);
    assert.deepEqual(program.commands.map((c) => c.name()).sort(), [...names].sort());
  }
  const all = COMMANDS.flatMap(([names]) => names);
  assert.equal(new Set(all).size, all.length, 'a command is listed twice');
});

test('a run builds only the module of its command; help and unknown commands get the whole tree', async () => {
  assert.deepEqual((await buildProgram('exec')).commands.map((c) => c.name()), ['exec', 'can-i', 'withdraw']);
  assert.deepEqual((await buildProgram(null)).commands.map((c) => c.name()), []);
  const everything = COMMANDS.flatMap(([names]) => names);
  assert.deepEqual((await buildProgram(undefined)).commands.map((c) => c.name()), everything);
  assert.deepEqual((await buildProgram('no-such-command')).commands.map((c) => c.name()), everything);
});
