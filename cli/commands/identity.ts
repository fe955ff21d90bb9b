/**
 * Agent identity from the command line: `enroll`, `whoami`, `peers`, `tokens`, `revoke`, `secrets`. Operator
 * commands talk to the running gate over its admin socket; `whoami` talks to the agent socket as the agent, with
 * the credential file `enroll` wrote.
 */
import { confirm, password } from '@inquirer/prompts';
import type { Command } from 'commander';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LatticeError } from '../../core/errors.ts';
import { writeFileExclusive } from '../../core/fs-atomic.ts';
import { resolveHome, runPaths } from '../../core/home.ts';
import { generateEd25519Jwks } from '../../core/crypto/index.ts';
import { DEFAULT_TOKEN_PRESETS, SCOPES, WORKSPACE_SCOPES } from '../../core/identity/tokens.ts';
import { POLICY_PRESETS } from '../../core/identity/wireguard.ts';
import { credentialFor, type EnrollmentReply } from '../../sdk/credential.ts';
import { agentClient, asGate } from '../agent.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

export function registerIdentity(program: Command): void {
  registerEnroll(program);
  registerPeers(program);
  registerTokens(program);
  registerRevoke(program);
  registerSecrets(program);
}

interface EnrollReply extends EnrollmentReply {
  overlayIP: string;
  wireguardConfig: string;
}

function registerEnroll(program: Command): void {
  const enroll = program
    .command('enroll')
    .description('enroll an agent through the admin socket and write its credential file (token + DPoP key, 0600)')
    .requiredOption('--name <name>', 'agent name')
    .requiredOption('--type <type>', 'agent type, e.g. claude-code')
    .requiredOption('--workspace <id>', 'workspace id, e.g. ws-laptop')
    .option('--ttl <duration>', 'lifetime, e.g. 90s, 30m, 1h (at most identity.max_ttl, 24h by default)', '1h')
    .option('--preset <preset>', `policy preset: ${POLICY_PRESETS.join(', ')}`, 'sandboxed')
    .option('--out <file>', 'where to write the credential (default: <home>/credentials/<peerId>.json)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the enrollment (without secrets) as JSON')
    .action(async (opts: { name: string; type: string; workspace: string; ttl: string; preset: string; out?: string; home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const keys = generateEd25519Jwks();
      const reply = await admin<EnrollReply>(opts.home, 'POST', '/api/v1/agent-enroll', {
        agentName: opts.name,
        agentType: opts.type,
        workspaceId: opts.workspace,
        ttl: opts.ttl,
        policyPreset: opts.preset,
        publicJwk: keys.publicJwk,
      });
      const credential = credentialFor(reply, keys, runPaths(paths).gateSocket);
      let file = opts.out;
      if (file === undefined) {
        mkdirSync(join(paths.root, 'credentials'), { recursive: true, mode: 0o700 });
        file = join(paths.root, 'credentials', `${reply.peerId}.json`);
      }
      writeFileExclusive(file, `${JSON.stringify({ ...credential, overlayIP: reply.overlayIP, wireguardConfig: reply.wireguardConfig }, null, 2)}\n`, 0o600);
      const summary = { peerId: reply.peerId, leaseId: reply.leaseId, overlayIP: reply.overlayIP, expiresAt: reply.expiresAt, credential: file };
      if (opts.json === true) return printJson(summary);
      process.stdout.write(`enrolled ${reply.peerId} (${opts.preset}, overlay ${reply.overlayIP}, until ${reply.expiresAt})\n  credential  ${file}\nuse it with: LATTICE_CREDENTIAL=${file} lattice whoami\n`);
    });
  example(enroll, 'lattice enroll --name builder --type claude-code --workspace ws-laptop --ttl 1h --preset sandboxed --out cred.json');

  const whoami = program
    .command('whoami')
    .description('ask the gate who this credential is (the agent side, with DPoP)')
    .option('--credential <file>', 'credential file (default: $LATTICE_CREDENTIAL)')
    .option('--json', 'print the identity as JSON')
    .action(async (opts: { credential?: string; json?: boolean }) => {
      const client = agentClient(opts.credential);
      const me = await asGate(() => client.whoami());
      await client.close();
      if (opts.json === true) return printJson(me);
      process.stdout.write(`${Object.entries(me).map(([k, v]) => `${k.padEnd(14)}${String(v)}`).join('\n')}\n`);
    });
  example(whoami, 'LATTICE_CREDENTIAL=cred.json lattice whoami', 'lattice whoami --credential cred.json --json');
}

type PeerView = { peerId: string; name: string; agentType: string; workspaceId: string; policyPreset: string; overlayIP: string; expiresAt: string };

function registerPeers(program: Command): void {
  const peers = program.command('peers').description('enrolled agents: list, show, delete, and the firewall rules for them');
  example(
    peers.command('list').description('list live peers').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (opts: { home?: string; json?: boolean }) => {
      const { peers: list } = await admin<{ peers: PeerView[] }>(opts.home, 'GET', '/api/v1/peers');
      if (opts.json === true) return printJson({ peers: list });
      process.stdout.write(`${table(['PEER', 'NAME', 'TYPE', 'WORKSPACE', 'PRESET', 'OVERLAY IP', 'EXPIRES'], list.map((p) => [p.peerId, p.name, p.agentType, p.workspaceId, p.policyPreset, p.overlayIP, p.expiresAt]))}\n`);
    }),
    'lattice peers list',
  );
  example(
    peers.command('show <id>').description('show one peer').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (id: string, opts: { home?: string; json?: boolean }) => {
      const peer = await admin<PeerView>(opts.home, 'GET', `/api/v1/peers/${encodeURIComponent(id)}`);
      if (opts.json === true) return printJson(peer);
      process.stdout.write(`${Object.entries(peer).map(([k, v]) => `${k.padEnd(14)}${String(v)}`).join('\n')}\n`);
    }),
    'lattice peers show peer_AbC',
  );
  example(
    peers.command('delete <id>').description('remove a peer now (its lease and overlay address go with it)').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (id: string, opts: { home?: string; json?: boolean }) => {
      const result = await admin<{ deleted: string }>(opts.home, 'DELETE', `/api/v1/peers/${encodeURIComponent(id)}`);
      if (opts.json === true) return printJson(result);
      process.stdout.write(`deleted ${result.deleted}\n`);
    }),
    'lattice peers delete peer_AbC',
  );
  example(
    peers
      .command('rules')
      .description('render the nftables ruleset that enforces the presets of all live peers')
      .option('--format <format>', 'output format (nft)', 'nft')
      .option('--home <dir>', HOME_HELP)
      .option('--json', 'print as JSON')
      .action(async (opts: { format: string; home?: string; json?: boolean }) => {
        const reply = await admin<{ format: string; ruleset: string }>(opts.home, 'GET', `/api/v1/peers/rules?format=${encodeURIComponent(opts.format)}`);
        if (opts.json === true) return printJson(reply);
        process.stdout.write(reply.ruleset);
      }),
    'lattice peers rules --format nft > lattice.nft && sudo nft -f lattice.nft',
  );
}

type TokenView = { id: string; scopes: string[]; workspace: string | null; presets: string[] | null; createdAt: string; expiresAt: string | null; revokedAt: string | null; token?: string };

function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('operator and workspace tokens (bearer, with scopes)');
  example(
    tokens
      .command('create')
      .description('create a token; it is shown once')
      .requiredOption('--scope <scopes>', `comma-separated: ${SCOPES.join(', ')}`)
      .option('--workspace <id>', `limit the token to one workspace: the agents it enrolls, the peers it renews or removes (only with ${WORKSPACE_SCOPES.join(', ')})`)
      .option('--preset <presets>', `comma-separated presets an enroll token may grant: ${POLICY_PRESETS.join(', ')} (default: ${DEFAULT_TOKEN_PRESETS.join(', ')})`)
      .option('--ttl <duration>', 'expire after this long (default: never)')
      .option('--home <dir>', HOME_HELP)
      .option('--json', 'print as JSON (includes the token)')
      .action(async (opts: { scope: string; workspace?: string; preset?: string; ttl?: string; home?: string; json?: boolean }) => {
        const created = await admin<TokenView>(opts.home, 'POST', '/api/v1/tokens', {
          scopes: opts.scope.split(',').map((s) => s.trim()),
          ...(opts.workspace !== undefined && { workspace: opts.workspace }),
          ...(opts.preset !== undefined && { presets: opts.preset.split(',').map((s) => s.trim()) }),
          ...(opts.ttl !== undefined && { ttl: opts.ttl }),
        });
        if (opts.json === true) return printJson(created);
        const limits = [...created.scopes, ...(created.workspace === null ? [] : [`workspace ${created.workspace}`]), ...(created.presets === null ? [] : [`presets ${created.presets.join(', ')}`])];
        process.stdout.write(`${created.token ?? ''}\ncreated ${created.id} (${limits.join('; ')}); the token above is shown only once\n`);
      }),
    'lattice tokens create --workspace ws-laptop --scope enroll',
    'lattice tokens create --workspace ws-team --scope enroll --preset sandboxed,coordinator',
    'lattice tokens create --scope approve,audit:read --ttl 8h',
  );
  example(
    tokens.command('list').description('list tokens (never their secrets)').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (opts: { home?: string; json?: boolean }) => {
      const { tokens: list } = await admin<{ tokens: TokenView[] }>(opts.home, 'GET', '/api/v1/tokens');
      if (opts.json === true) return printJson({ tokens: list });
      process.stdout.write(`${table(['TOKEN', 'SCOPES', 'WORKSPACE', 'PRESETS', 'CREATED', 'EXPIRES', 'REVOKED'], list.map((t) => [t.id, t.scopes.join(','), t.workspace, t.presets?.join(',') ?? null, t.createdAt, t.expiresAt, t.revokedAt]))}\n`);
    }),
    'lattice tokens list',
  );
  example(
    tokens.command('revoke <id>').description('revoke a token (same as `lattice revoke <id>`)').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (id: string, opts: { home?: string; json?: boolean }) => {
      const result = await admin<{ revoked: string; kind: string }>(opts.home, 'POST', '/api/v1/revoke', { id });
      if (opts.json === true) return printJson(result);
      process.stdout.write(`revoked ${result.kind} ${result.revoked}\n`);
    }),
    'lattice tokens revoke tok_AbC',
  );
}

function registerRevoke(program: Command): void {
  const revoke = program
    .command('revoke [id]')
    .description('end a peer, lease or token at once and for good; --all ends every agent identity')
    .option('--all', 'revoke every agent identity issued so far (asks first unless --yes)')
    .option('--yes', 'do not ask')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (id: string | undefined, opts: { all?: boolean; yes?: boolean; home?: string; json?: boolean }) => {
      if ((id === undefined) === (opts.all !== true)) throw new LatticeError('INVALID_ARGUMENT', 'give an id to revoke, or --all');
      if (opts.all === true && opts.yes !== true) {
        if (!process.stdin.isTTY) throw new LatticeError('INVALID_ARGUMENT', 'revoke --all ends every agent identity; pass --yes to confirm without a terminal');
        if (!(await confirm({ message: 'Revoke every agent identity? Agents must enroll again.', default: false }))) {
          throw new LatticeError('INVALID_ARGUMENT', 'not revoked');
        }
      }
      const result = await admin<Record<string, unknown>>(opts.home, 'POST', '/api/v1/revoke', opts.all === true ? { all: true } : { id });
      if (opts.json === true) return printJson(result);
      process.stdout.write(opts.all === true ? `revoked every agent identity (epoch ${String(result['epoch'])})\n` : `revoked ${String(result['kind'])} ${String(result['revoked'])}\n`);
    });
  example(revoke, 'lattice revoke peer_AbC', 'lattice revoke --all --yes');
}

function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('secrets the gate injects into effects (encrypted at rest; values never printed)');
  example(
    secrets
      .command('set <name>')
      .description('set a secret; the value is read from a hidden prompt, or from stdin when it is not a terminal (never from argv)')
      .option('--home <dir>', HOME_HELP)
      .option('--json', 'print as JSON')
      .action(async (name: string, opts: { home?: string; json?: boolean }) => {
        const value = process.stdin.isTTY ? await password({ message: `value for ${name}`, mask: true }) : readFileSync(0, 'utf8').replace(/\r?\n$/, '');
        if (value === '') throw new LatticeError('INVALID_ARGUMENT', 'the secret value is empty');
        const result = await admin<{ name: string; created: boolean }>(opts.home, 'POST', `/api/v1/secrets/${encodeURIComponent(name)}`, { value });
        if (opts.json === true) return printJson(result);
        process.stdout.write(`${result.created ? 'created' : 'updated'} secret ${result.name}\n`);
      }),
    'lattice secrets set GITHUB_TOKEN',
    'printf %s "$TOKEN" | lattice secrets set GITHUB_TOKEN',
  );
  example(
    secrets.command('list').description('list secret names (never values)').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (opts: { home?: string; json?: boolean }) => {
      const { secrets: list } = await admin<{ secrets: { name: string; createdAt: string; updatedAt: string }[] }>(opts.home, 'GET', '/api/v1/secrets');
      if (opts.json === true) return printJson({ secrets: list });
      process.stdout.write(`${table(['NAME', 'CREATED', 'UPDATED'], list.map((s) => [s.name, s.createdAt, s.updatedAt]))}\n`);
    }),
    'lattice secrets list',
  );
  example(
    secrets.command('rm <name>').description('remove a secret').option('--home <dir>', HOME_HELP).option('--json', 'print as JSON').action(async (name: string, opts: { home?: string; json?: boolean }) => {
      const result = await admin<{ removed: string }>(opts.home, 'DELETE', `/api/v1/secrets/${encodeURIComponent(name)}`);
      if (opts.json === true) return printJson(result);
      process.stdout.write(`removed secret ${result.removed}\n`);
    }),
    'lattice secrets rm GITHUB_TOKEN',
  );
}
