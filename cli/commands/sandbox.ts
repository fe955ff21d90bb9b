/**
 * `lattice sandbox [-- CMD ARGS…]`: run an agent CLI inside namespaces, pivot_root, Landlock and seccomp, with the
 * gate socket, the HTTPS allowlisting proxy and the credential proxies as its only exits. `--list-profiles`
 * lists the profiles. The work is in sandbox/; this file reads flags and wires the gate in.
 */
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { LatticeError } from '../../core/errors.ts';
import { resolveHome } from '../../core/home.ts';
import { shippedFile } from '../../core/runtime.ts';
import { ENV_NAME, HOST_NAME, listProfiles, loadProfile } from '../../sandbox/profile.ts';
import { hostDirs } from '../../sandbox/host-dirs.ts';
import { checkWorkspace, runSandbox } from '../../sandbox/session.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin, openHeld } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

interface SandboxOptions {
  profile?: string;
  config?: string;
  workspace?: string;
  allowHost: string[];
  passEnv: string[];
  roMount: string[];
  rwMount: string[];
  network: boolean;
  allowDegraded?: boolean;
  jsonStatus?: string;
  listProfiles?: boolean;
  json?: boolean;
  home?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function checkFlags(opts: SandboxOptions): void {
  const host = new RegExp(HOST_NAME);
  for (const h of opts.allowHost) {
    if (isIP(h) !== 0 || !host.test(h)) throw new LatticeError('INVALID_ARGUMENT', `--allow-host ${h}: give a host name (lower case, with a dot), not an IP address or URL`);
  }
  for (const v of opts.passEnv) if (!new RegExp(ENV_NAME).test(v)) throw new LatticeError('INVALID_ARGUMENT', `--pass-env ${v}: not an environment variable name`);
  for (const m of [...opts.roMount, ...opts.rwMount]) {
    if (!m.startsWith('/') && !m.startsWith('~/')) throw new LatticeError('INVALID_ARGUMENT', `--ro-mount/--rw-mount ${m}: give an absolute path (or ~/…)`);
  }
}

export function registerSandbox(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('run an agent CLI confined: namespaces, pivot_root, Landlock, seccomp; exits only through the gate and lattice\'s proxies')
    .argument('[command...]', 'the command to run inside (default: the profile\'s command), after --')
    .option('--profile <name>', 'sandbox profile: built-in (claude-code, codex, cursor, opencode, aider, default) or $LATTICE_HOME/profiles/NAME.toml')
    .option('--config <file>', 'a profile file to use (it may `extends` a named profile)')
    .option('--workspace <dir>', 'the directory the agent may change (default: the current directory)')
    .option('--allow-host <host>', 'also allow HTTPS to this host name through the proxy (repeatable)', collect, [])
    .option('--pass-env <var>', 'also pass this environment variable in (repeatable)', collect, [])
    .option('--ro-mount <path>', 'also make this host path visible, read-only (repeatable)', collect, [])
    .option('--rw-mount <path>', 'also make this host path visible, read-write (repeatable)', collect, [])
    .option('--no-network', 'no proxies and no loopback TCP: the gate socket is the only exit')
    .option('--allow-degraded', 'run even if the kernel lacks Landlock (recorded in the ledger)')
    .option('--json-status <file>', 'write the session\'s status (ids, ports, exit code) as JSON to this file')
    .option('--list-profiles', 'list the profiles (built-in and $LATTICE_HOME/profiles) and exit')
    .option('--json', 'with --list-profiles: print as JSON')
    .option('--home <dir>', HOME_HELP)
    .passThroughOptions()
    .action(async (command: string[], opts: SandboxOptions) => {
      checkFlags(opts);
      const paths = resolveHome(opts.home);
      if (opts.listProfiles === true) {
        const profiles = listProfiles(paths.root).map((name) => loadProfile(paths.root, name));
        if (opts.json === true) return printJson({ profiles });
        const rows = profiles.map((p) => [p.name, p.command.join(' '), p.allowHosts.length, Object.keys(p.credentials).join(',') || '-', p.description]);
        return void process.stdout.write(`${table(['PROFILE', 'COMMAND', 'HOSTS', 'ROUTES', 'DESCRIPTION'], rows)}\n`);
      }
      const profile = loadProfile(paths.root, opts.profile, opts.config);
      const workspace = checkWorkspace(opts.workspace ?? process.cwd(), hostDirs(paths.root, process.env));
      process.exitCode = await runSandbox({
        paths,
        profile,
        workspace,
        allowHosts: opts.allowHost,
        passEnv: opts.passEnv,
        roMounts: opts.roMount,
        rwMounts: opts.rwMount,
        network: opts.network && profile.network,
        allowDegraded: opts.allowDegraded === true,
        argv: command,
        ...(opts.jsonStatus === undefined ? {} : { jsonStatus: opts.jsonStatus }),
        helper: shippedFile('lattice-sandbox'),
        admin: (method, path, body) => admin(opts.home, method, path, body),
        openHeld: (path, body) => openHeld(opts.home, path, body),
        // Only a profile with a `secret:` route needs the ledger's secret store: loaded then, not at every start.
        secret: async (name) => {
          const [{ openReadOnly }, { loadOrCreateMasterKey }, { SecretStore }] = await Promise.all([
            import('../../core/ledger/database.ts'), import('../../core/secrets/master-key.ts'), import('../../core/secrets/store.ts'),
          ]);
          const db = openReadOnly(paths.db);
          try {
            return new SecretStore(db, loadOrCreateMasterKey(paths)).get(name);
          } finally {
            db.close();
          }
        },
        log: (line) => process.stderr.write(`lattice sandbox: ${line}\n`),
      });
    });
  example(
    sandbox,
    'lattice sandbox --profile claude-code',
    'lattice sandbox --profile claude-code -- claude --version',
    'lattice sandbox --allow-host registry.npmjs.org -- npm install',
    'lattice sandbox --no-network -- make test',
    'lattice sandbox --list-profiles',
  );
}
