/** `lattice completion`: bash and fish scripts complete commands, subcommands and flags in the real shells; the zsh script (bash's, through bashcompinit) parses. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, tempDir } from '../helpers.ts';

function complete(script: string, words: string[]): string[] {
  const file = join(tempDir(), 'lattice.bash');
  writeFileSync(file, script);
  const cmd = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _lattice; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', cwd: tempDir() });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('lattice completion', () => {
  it('completes commands, subcommands and flags in bash', () => {
    const script = lattice(['completion', 'bash']).stdout;
    assert.equal(spawnSync('bash', ['-n'], { input: script }).status, 0, 'the script parses');
    assert.deepEqual(complete(script, ['lattice', 'ver']), ['verify']);
    assert.deepEqual(complete(script, ['lattice', 'mcp', 'ins']), ['install']);
    assert.deepEqual(complete(script, ['lattice', 'mcp', 'install', '--cl']), ['--client']);
    assert.deepEqual(complete(script, ['lattice', 'approvals', 'approve', 'apr_1', '--plan']), ['--plan-sha256']);
    assert.deepEqual(complete(script, ['lattice', 'audit', '--no-such']), [], 'nothing made up');
  });

  it('writes a zsh script that parses and a fish script that completes in a real fish, and refuses other shells', () => {
    const zsh = lattice(['completion', 'zsh']).stdout;
    assert.match(zsh, /^#compdef lattice/);
    assert.match(zsh, /"mcp install"\) words="[^"]*--client/);
    assert.equal(spawnSync('zsh', ['-n'], { input: zsh }).status, 0, 'the zsh script parses');
    const fish = lattice(['completion', 'fish']).stdout;
    const file = join(tempDir(), 'lattice.fish');
    writeFileSync(file, fish);
    const fishComplete = (line: string) => spawnSync('fish', ['-c', `source ${file}; complete -C "${line}"`], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split('\t')[0]).filter((l) => l !== '');
    assert.deepEqual(fishComplete('lattice mcp ins'), ['install']);
    assert.deepEqual(fishComplete('lattice approvals approve --pl'), ['--plan-sha256']);
    assert.ok(fishComplete('lattice ').includes('doctor'));
    const other = lattice(['completion', 'powershell']);
    assert.equal(other.status, 2);
    assert.match(other.stderr, /use bash, zsh or fish/);
  });
});
