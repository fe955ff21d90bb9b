/**
 * The "lattice verify" GitHub Action: action.yml passes its inputs to scripts/action-verify.sh as environment
 * variables, and the script, run here as the runner would, installs the real binary from a release and passes a
 * good bundle, fails a tampered one or one signed by keys outside the given key set, and fails when there is
 * nothing to verify.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ROOT, lattice, tempDir } from '../helpers.ts';
import { BINARY, cleanEnv, releaseOf, run } from './harness.ts';

const SCRIPT = join(ROOT, 'scripts', 'action-verify.sh');
let releaseDir: string;
let good: string;
let tampered: string;
/** The key set of the home that signed `good`, and one of an unrelated home. */
let keyset: string;
let foreignKeyset: string;

before(() => {
  releaseDir = releaseOf(BINARY);
  const work = tempDir('lattice-action-');
  const home = join(work, 'home');
  for (const args of [['init', '--home', home], ['keys', 'rotate', '--home', home], ['init', '--home', join(work, 'other')]]) {
    const made = lattice(args);
    assert.equal(made.status, 0, made.stderr);
  }
  keyset = join(home, 'keys', 'keyset.json');
  foreignKeyset = join(work, 'other', 'keys', 'keyset.json');
  good = join(work, 'ledger.jsonl');
  const exported = lattice(['export', '--home', home, '--out', good]);
  assert.equal(exported.status, 0, exported.stderr);
  tampered = join(work, 'tampered.jsonl');
  const text = readFileSync(good, 'utf8');
  assert.match(text, /"type":"keys\.rotated"/);
  writeFileSync(tampered, text.replace('"type":"keys.rotated"', '"type":"keys.created"'));
});

/** The action's step as the runner runs it: `sh scripts/action-verify.sh` with the inputs in the environment. */
function verifyStep(bundle: string, extra: NodeJS.ProcessEnv = {}): ReturnType<typeof run> & { runnerTemp: string } {
  const runnerTemp = tempDir('lattice-runner-temp-');
  chmodSync(runnerTemp, 0o755);
  const env = cleanEnv({ LATTICE_BUNDLE: bundle, LATTICE_VERSION: 'latest', LATTICE_INSTALL_BASE: releaseDir, RUNNER_TEMP: runnerTemp, ...extra });
  return { ...run('sh', [SCRIPT], { env, cwd: tempDir() }), runnerTemp };
}

describe('lattice verify action', () => {
  it('passes a good bundle against the keyset input, with lattice installed under RUNNER_TEMP and removed afterwards', () => {
    const result = verifyStep(good, { LATTICE_KEYSET: keyset });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^VALID: .*ledger\.jsonl \(bundle\)/);
    assert.match(result.stderr, new RegExp(`installed +${result.runnerTemp}/lattice\\.\\w+/bin/lattice`));
    assert.doesNotMatch(result.stderr, /not who signed it/);
    assert.deepEqual(readdirSync(result.runnerTemp), []);
  });

  it('fails a bundle signed by keys outside the keyset input', () => {
    const foreign = verifyStep(good, { LATTICE_KEYSET: foreignKeyset });
    assert.equal(foreign.status, 1, foreign.stdout + foreign.stderr);
    assert.match(foreign.stdout, /\(UNKNOWN_KEY\)/);
    assert.match(foreign.stderr, /ledger\.jsonl did not verify \(lattice verify exited 1\)/);
  });

  it('fails a tampered bundle and says which; without a keyset input it says it proves integrity only', () => {
    const result = verifyStep(tampered);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^TAMPERED at seq 2 \(HASH_MISMATCH\)/);
    assert.match(result.stderr, /no 'keyset' input, so this proves the bundle is intact, not who signed it/);
    assert.match(result.stderr, /tampered\.jsonl did not verify \(lattice verify exited 1\)/);
  });

  it('fails when the bundle or key set is missing, or lattice cannot be installed', () => {
    const missing = verifyStep(join(tempDir(), 'nope.jsonl'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no bundle at '.*nope\.jsonl'.*check the action's 'path' input/);

    const noKeyset = verifyStep(good, { LATTICE_KEYSET: join(tempDir(), 'keyset.json') });
    assert.equal(noKeyset.status, 1);
    assert.match(noKeyset.stderr, /no key set at '.*keyset\.json'.*check the action's 'keyset' input/);

    const empty = verifyStep('');
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /no bundle given: set the action's 'path' input/);

    const uninstallable = verifyStep(good, { LATTICE_INSTALL_BASE: join(tempDir(), 'no-release') });
    assert.equal(uninstallable.status, 1);
    assert.match(uninstallable.stderr, /SHA256SUMS does not exist[\s\S]*lattice could not be installed/);
  });

  it('takes its inputs as environment variables, never as text spliced into the script', () => {
    const parsed = run('ruby', ['-ryaml', '-rjson', '-e', 'puts JSON.generate(YAML.safe_load(File.read(ARGV[0])))', join(ROOT, 'action.yml')]);
    assert.equal(parsed.status, 0, parsed.stderr);
    const action = JSON.parse(parsed.stdout) as {
      name: string;
      inputs: Record<string, { required: boolean; default?: string }>;
      runs: { using: string; steps: { shell: string; env: Record<string, string>; run: string }[] };
    };
    assert.equal(action.name, 'lattice verify');
    assert.deepEqual(Object.keys(action.inputs), ['path', 'keyset', 'version', 'install-base']);
    assert.equal(action.inputs['path']?.required, true);
    assert.equal(action.inputs['version']?.default, 'latest');
    assert.equal(action.runs.using, 'composite');
    assert.equal(action.runs.steps.length, 1);
    const [step] = action.runs.steps;
    assert.deepEqual(step?.env, {
      LATTICE_BUNDLE: '${{ inputs.path }}',
      LATTICE_KEYSET: '${{ inputs.keyset }}',
      LATTICE_VERSION: '${{ inputs.version }}',
      LATTICE_INSTALL_BASE: '${{ inputs.install-base }}',
    });
    assert.equal(step?.shell, 'sh');
    assert.equal(step?.run, 'sh "$GITHUB_ACTION_PATH/scripts/action-verify.sh"');
  });

  it('passes shellcheck', () => {
    const result = run('shellcheck', [SCRIPT]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.equal(result.stdout, '');
  });
});
