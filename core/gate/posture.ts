/**
 * The posture score: 0–100, the sum of six named components, each scored by a check an operator can act on.
 * Every component says what it found and, when it is short of its maximum, what to do about it.
 *
 *   default_deny        20  No permit's scope matches an agent of an unknown workspace and preset, for any
 *                           registered action (a blanket `permit(principal, …)` does); the applied policy set
 *                           is intact on disk. 0 when either fails.
 *   approvals_high_risk 20  For every high- or critical-risk action and every preset, each permit whose scope
 *                           matches is an `@approval("required")` permit. Scored by the share of (action,
 *                           preset) pairs that can only be held for a human; full when no such action exists.
 *   secrets_encrypted   15  Secrets are always sealed with AES-256-GCM; this checks the key that seals them:
 *                           master.key a regular file, mode 0600, in a 0700 home (full while no secret is stored).
 *   key_rotated         15  The active ledger signing key is at most 90 days old (full), at most 180 (half).
 *   sandbox_used        15  A `lattice sandbox` session started in the last 7 days.
 *   ledger_verified     15  The gate's own verification of the whole ledger (hash chain, checkpoints,
 *                           receipts) passes; run at most every few seconds and shared (verifier.ts).
 *
 * The policy checks read scopes, not conditions: a permit whose conditions never hold for real requests still
 * counts against the score, so the score errs toward reporting risk.
 */
import { lstatSync, statSync } from 'node:fs';
import type { ActionRegistry } from '../actions/registry.ts';
import { POLICY_PRESETS } from '../identity/wireguard.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { queryEvents } from '../ledger/query.ts';
import type { PolicyStore } from '../policy/store.ts';
import { masterKeyPath } from '../secrets/master-key.ts';
import type { GateVerifier } from './verifier.ts';

export interface PostureComponent {
  readonly id: string;
  readonly title: string;
  readonly score: number;
  readonly max: number;
  readonly status: 'pass' | 'partial' | 'fail';
  readonly detail: string;
  /** What to do to reach the maximum; null when it is reached. */
  readonly fix: string | null;
}

export interface Posture {
  readonly score: number;
  readonly components: readonly PostureComponent[];
  readonly computedAt: string;
}

export interface PostureDeps {
  readonly ledger: Ledger;
  readonly policies: PolicyStore;
  readonly registry: ActionRegistry;
  readonly verifier: GateVerifier;
}

const DAY = 86_400_000;
const PROBE = '~posture-probe'; // not a valid workspace or preset name, so no policy names it

function component(id: string, title: string, max: number, fraction: number, detail: string, fix: string): PostureComponent {
  const score = Math.round(max * Math.min(1, Math.max(0, fraction)));
  return { id, title, score, max, status: score === max ? 'pass' : score === 0 ? 'fail' : 'partial', detail, fix: score === max ? null : fix };
}

/** `verifyMaxAgeMs`: how old a ledger verification may be reused (see GateVerifier.verify). */
export async function computePosture(d: PostureDeps, verifyMaxAgeMs?: number, now = Date.now()): Promise<Posture> {
  const components = [...policyComponents(d), secretsComponent(d.ledger), keyComponent(d.ledger, now), sandboxComponent(d.ledger, now), await ledgerComponent(d.verifier, verifyMaxAgeMs)];
  return { score: components.reduce((sum, c) => sum + c.score, 0), components, computedAt: new Date(now).toISOString() };
}

function policyComponents(d: PostureDeps): PostureComponent[] {
  const active = d.policies.current();
  if (!active.ok) {
    const fix = 'restore the policy files or apply a reviewed set with `lattice policy apply`';
    return [
      component('default_deny', 'Default deny', 20, 0, `the policy files on disk are not the applied set: ${active.message}`, fix),
      component('approvals_high_risk', 'Approvals for high-risk actions', 20, 0, 'the policy set cannot be trusted', fix),
    ];
  }
  const engine = active.engine;
  const actions = d.registry.list().map((a) => a.manifest);
  const scope = (action: string, workspace: string, preset: string) =>
    engine.permitsInScope({ peerId: PROBE, workspace, preset, action });

  const open = actions.flatMap((m) => {
    const permits = scope(m.id, PROBE, PROBE);
    return permits === null || permits.length > 0 ? [{ action: m.id, policies: permits?.map((p) => p.id) ?? ['(could not be evaluated)'] }] : [];
  });
  const defaultDeny = component(
    'default_deny',
    'Default deny',
    20,
    open.length === 0 ? 1 : 0,
    open.length === 0
      ? `no policy permits an agent it does not name (${actions.length} actions checked)`
      : `an agent of any workspace and preset is in scope of ${open.slice(0, 3).map((o) => `${o.policies.join(', ')} for ${o.action}`).join('; ')}${open.length > 3 ? ` and ${open.length - 3} more` : ''}`,
    'scope every permit to a workspace, preset or agent (e.g. `principal in Preset::"coordinator"`) instead of any principal',
  );

  const risky = actions.filter((m) => m.risk === 'high' || m.risk === 'critical');
  const pairs = risky.flatMap((m) => POLICY_PRESETS.map((preset) => ({ action: m.id, preset, permits: scope(m.id, 'default', preset) })));
  const ungated = pairs.filter((p) => p.permits === null || p.permits.some((policy) => !policy.approval));
  const approvals = component(
    'approvals_high_risk',
    'Approvals for high-risk actions',
    20,
    pairs.length === 0 ? 1 : (pairs.length - ungated.length) / pairs.length,
    pairs.length === 0
      ? 'no high- or critical-risk action is registered'
      : ungated.length === 0
        ? `all ${risky.length} high- and critical-risk actions need a human approval for every preset`
        : `${ungated.length} of ${pairs.length} (action, preset) pairs can run without approval: ${ungated.slice(0, 3).map((p) => `${p.action} for ${p.preset}`).join(', ')}${ungated.length > 3 ? ', …' : ''}`,
    'mark the permits of high-risk actions `@approval("required")` so they are held for a human',
  );
  return [defaultDeny, approvals];
}

function secretsComponent(ledger: Ledger): PostureComponent {
  const file = masterKeyPath(ledger.paths);
  const fix = `\`chmod 700 ${ledger.paths.root}\` and \`chmod 600 ${file}\``;
  const stored = ledger.database.prepare('SELECT count(*) FROM secrets').pluck().get() as number;
  let problem: string | null = null;
  try {
    const key = lstatSync(file);
    const home = statSync(ledger.paths.root);
    if (!key.isFile()) problem = `${file} is not a regular file`;
    else if ((key.mode & 0o077) !== 0) problem = `${file} is readable by others (mode ${(key.mode & 0o777).toString(8)})`;
    else if ((home.mode & 0o077) !== 0) problem = `${ledger.paths.root} is open to others (mode ${(home.mode & 0o777).toString(8)})`;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    // No key and no secret: nothing is at rest yet, and the first `lattice secrets set` makes the key privately.
    if (missing && stored === 0) return component('secrets_encrypted', 'Secrets encrypted at rest', 15, 1, 'no secrets stored yet; each will be sealed with AES-256-GCM under a private master key', fix);
    problem = missing ? `${stored} secrets are stored but the master key that seals them is missing` : `cannot inspect ${file}: ${(error as Error).message}`;
  }
  return component('secrets_encrypted', 'Secrets encrypted at rest', 15, problem === null ? 1 : 0, problem ?? `${stored} secrets sealed with AES-256-GCM under a private master key`, fix);
}

function keyComponent(ledger: Ledger, now: number): PostureComponent {
  const set = ledger.keys.publicKeys;
  const active = set.document.keys.find((k) => k.keyId === set.activeKeyId);
  const ageDays = active === undefined ? Infinity : Math.floor((now - Date.parse(active.createdAt)) / DAY);
  return component(
    'key_rotated',
    'Signing key rotated recently',
    15,
    ageDays <= 90 ? 1 : ageDays <= 180 ? 0.5 : 0,
    active === undefined ? 'the active key is missing from the key set' : `the active signing key ${active.keyId} is ${ageDays} days old`,
    'rotate it with `lattice keys rotate` (old signatures stay verifiable)',
  );
}

function sandboxComponent(ledger: Ledger, now: number): PostureComponent {
  const since = new Date(now - 7 * DAY).toISOString();
  const last = queryEvents(ledger.database, { type: 'sandbox.started', since }, { limit: 1 }).events[0];
  return component(
    'sandbox_used',
    'Agents run in the sandbox',
    15,
    last === undefined ? 0 : 1,
    last === undefined ? 'no sandbox session in the last 7 days' : `last sandbox session started ${last.ts}`,
    'run agents with `lattice sandbox --profile <agent> -- <command>`',
  );
}

async function ledgerComponent(verifier: GateVerifier, maxAgeMs: number | undefined): Promise<PostureComponent> {
  const { report, verifiedAt } = await verifier.verify(maxAgeMs);
  return component(
    'ledger_verified',
    'Ledger verifies',
    15,
    report.ok ? 1 : 0,
    report.ok ? `${report.events} events verified at ${verifiedAt}` : `TAMPERED at seq ${report.failure?.seq ?? '?'} (${report.failure?.code ?? 'unknown'}): ${report.failure?.message ?? ''}`,
    'stop the gate, keep the database for investigation (`lattice export`), and verify offline with `lattice verify --json`',
  );
}
