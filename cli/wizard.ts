/**
 * The first-run setup of `lattice up` on a terminal with no configuration: where to keep state, which preset
 * policies to start with, which API keys to import from the environment into the encrypted secrets store, and
 * whether to listen on loopback TCP. It writes `lattice.toml` (so later runs start at once) and the chosen policy
 * files, and returns the keys to import once the gate runs. `--yes` and any run without a terminal skip it.
 */
import { checkbox, confirm, input, number } from '@inquirer/prompts';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configPath } from '../core/config/config.ts';
import { writeFileAtomic } from '../core/fs-atomic.ts';
import { ensureHome, homePaths, type HomePaths } from '../core/home.ts';
import { DEFAULT_POLICIES } from '../core/policy/defaults.ts';
import { policyDir } from '../core/policy/store.ts';
import { SECRET_NAME } from '../core/secrets/store.ts';

/** Environment variables that look like API keys worth offering to import. */
const KEY_VARIABLE = /^[A-Z][A-Z0-9_]*_(API_KEY|TOKEN|SECRET)$/;

export interface WizardResult {
  readonly paths: HomePaths;
  /** Environment variables whose values go into the secrets store, under the same name. */
  readonly importKeys: readonly string[];
}

/** Whether `lattice up` should ask: a terminal on both ends, no --yes, and no configuration yet. */
export function wantsWizard(paths: HomePaths, opts: { yes?: boolean; config?: string; detach?: boolean }): boolean {
  return opts.yes !== true && opts.config === undefined && process.stdin.isTTY && process.stdout.isTTY && !existsSync(configPath(paths));
}

export async function runWizard(defaults: HomePaths, env: NodeJS.ProcessEnv = process.env): Promise<WizardResult> {
  process.stdout.write('lattice: first run — a few questions, then the gate starts (Ctrl-C to stop; `lattice up --yes` skips this)\n');
  const root = resolve(await input({ message: 'Where should lattice keep its state?', default: defaults.root }));
  const paths = homePaths(root);
  const presets = await checkbox({
    message: 'Which preset policies should it start with?',
    choices: DEFAULT_POLICIES.map((p) => ({ name: p.name.replace(/\.cedar$/, ''), value: p.name, checked: true })),
    required: true,
  });
  const candidates = Object.keys(env).filter((k) => KEY_VARIABLE.test(k) && SECRET_NAME.test(k) && (env[k] ?? '') !== '').sort();
  const importKeys =
    candidates.length === 0
      ? []
      : await checkbox({ message: 'Import these API keys from your environment into the encrypted secrets store?', choices: candidates.map((k) => ({ name: k, value: k, checked: false })) });
  const tcp = await confirm({ message: 'Also listen on loopback TCP (for agents that cannot reach a unix socket)?', default: false });
  const port = tcp ? await number({ message: 'Port on 127.0.0.1:', default: 7443, min: 1, max: 65535, required: true }) : null;

  ensureHome(paths);
  const gate = port === null ? '' : `[gate]\nbase_url = "http://127.0.0.1:${port}"\nlisten = "127.0.0.1:${port}"\n`;
  writeFileAtomic(configPath(paths), `# Written by lattice's first-run setup; every key is optional (docs/commands.md lists them all).\n${gate}`, 0o600);
  const dir = policyDir(paths);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const p of DEFAULT_POLICIES.filter((p) => presets.includes(p.name))) writeFileSync(join(dir, p.name), p.text, { mode: 0o600 });
  }
  process.stdout.write(
    `wrote ${configPath(paths)}${presets.length < DEFAULT_POLICIES.length ? ` and ${presets.length} preset polic${presets.length === 1 ? 'y' : 'ies'}` : ''}\n` +
      (root === defaults.root ? '' : `use this home from now on: export LATTICE_HOME=${root}\n`),
  );
  return { paths, importKeys };
}
