// `npm test` runs this first: it installs what the suite needs beyond `npm ci`, or says exactly what is missing.
//
// - Debian packages for the commands the tests run (each named below with why). As root, missing ones are
//   installed with apt-get; as anyone else, it names them and the one command that installs them, and fails:
//   a suite that quietly skipped what it could not run would pass without testing the sandbox or the release.
// - The real agent CLIs the sandbox tests start inside their profiles, pinned in test/agents/package.json.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** command → [Debian package, what the suite uses it for] */
const COMMANDS = {
  python3: ['python3', 'builds better-sqlite3; runs the containment probes inside the sandbox'],
  make: ['make', 'builds better-sqlite3'],
  'g++': ['g++', 'builds better-sqlite3'],
  gcc: ['gcc', 'builds the sandbox helper'],
  curl: ['curl', 'containment probes; install.sh downloads'],
  git: ['git', 'containment probes; the newcomer test clones the checkout'],
  nft: ['nftables', '`nft -c` checks the peer rulesets lattice renders'],
  wg: ['wireguard-tools', '`wg pubkey` checks the WireGuard keys lattice generates'],
  openssl: ['openssl', 'a certificate for the TLS listener'],
  zsh: ['zsh', 'checks the zsh completion script'],
  fish: ['fish', 'checks the fish completion script'],
  shellcheck: ['shellcheck', 'lints install.sh and the action script'],
  ruby: ['ruby', 'parses the Homebrew formula and action.yml'],
  wget: ['wget', 'install.sh downloads with wget'],
  shasum: ['perl', "install.sh hashes with perl's shasum"],
  setpriv: ['util-linux', 'runs the sandbox and the installer as a normal user'],
};

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

function run(command, args, options = {}) {
  const r = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(`test prerequisites: \`${command} ${args.join(' ')}\` failed (status ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

function debianPackages() {
  const missing = Object.entries(COMMANDS).filter(([command]) => !onPath(command));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, [pkg]]) => pkg))];
  const why = missing.map(([command, [, use]]) => `  ${command.padEnd(10)} ${use}`).join('\n');
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    const how = onPath('apt-get') ? `sudo apt-get install -y ${packages.join(' ')}` : `your package manager (Debian names: ${packages.join(' ')})`;
    process.stderr.write(`the tests need commands this machine lacks:\n${why}\ninstall them with: ${how}\nthen run npm test again\n`);
    process.exit(1);
  }
  process.stdout.write(`installing the Debian packages the tests need: ${packages.join(' ')}\n${why}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
}

/** True when every agent CLI in test/agents/package.json is installed at its pinned version. */
function agentsInstalled() {
  const dir = join(ROOT, 'test', 'agents');
  const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies ?? {};
  return Object.entries(wanted).every(([name, version]) => {
    const file = join(dir, 'node_modules', name, 'package.json');
    return existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).version === version;
  });
}

function agentCLIs() {
  if (agentsInstalled()) return;
  process.stdout.write('installing the agent CLIs the sandbox tests run (test/agents)\n');
  // `npm install`, not `npm ci`: the registry lacks some other platforms' optional packages of opencode-ai, so no
  // lock file can list them all and `npm ci` refuses; the versions are pinned exactly in test/agents/package.json.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefix', join(ROOT, 'test', 'agents')]);
}

debianPackages();
agentCLIs();
