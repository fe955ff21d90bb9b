/**
 * The active policy set: the Cedar files in `$LATTICE_HOME/policies/`, and the hash of the set an operator last
 * applied (recorded in the ledger by `policy.applied` and kept in `gate_state`).
 *
 * A home whose set was never applied starts from the built-in preset defaults: on first use they are written to
 * the directory and recorded as applied, by the gate (a directory someone filled before the first start is
 * recorded as found). From then on the directory must hash to the applied value: a file edited, added or removed
 * without `lattice policy apply` makes `current()` answer `tampered`, and the pipeline denies every request with
 * POLICY_TAMPERED until an operator applies a set or restores the files. Files are re-read only when their
 * name, size, inode or modification time change, so the check costs a directory listing and a few stats.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomToken } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { fsyncDir, writeFileAtomic } from '../fs-atomic.ts';
import type { HomePaths } from '../home.ts';
import type { LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { DEFAULT_POLICIES } from './defaults.ts';
import { PolicyEngine } from './engine.ts';
import { policyHash, type PolicyFile } from './hash.ts';

export type ActivePolicy =
  | { readonly ok: true; readonly engine: PolicyEngine; readonly hash: string; readonly version: string }
  | { readonly ok: false; readonly expected: string; readonly found: string; readonly message: string };

const HASH_KEY = 'policy:hash';
const VERSION_KEY = 'policy:version';

export function policyDir(paths: HomePaths): string {
  return join(paths.root, 'policies');
}

/** The policy files in the home's directory, sorted by name (none when it does not exist). */
export function readPolicyDir(paths: HomePaths): PolicyFile[] {
  const dir = policyDir(paths);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cedar'))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
}

/** What a gate on this home would decide with: its files, or the built-in defaults while it has none. */
export function activePolicies(paths: HomePaths): { files: PolicyFile[]; source: 'home' | 'defaults' } {
  const files = readPolicyDir(paths);
  return files.length === 0 ? { files: [...DEFAULT_POLICIES], source: 'defaults' } : { files, source: 'home' };
}

/** The applied hash and version recorded in the ledger's state, if any set was ever applied. */
export function appliedPolicy(db: LedgerDatabase): { hash: string; version: string } | null {
  const get = db.prepare('SELECT value FROM gate_state WHERE key = ?').pluck();
  const hash = get.get(HASH_KEY) as string | undefined;
  return hash === undefined ? null : { hash, version: (get.get(VERSION_KEY) as string | undefined) ?? '1' };
}

export class PolicyStore {
  private signature = '';
  private state: ActivePolicy | undefined;
  private reportedTamper: string | null = null;
  /** While a set is being applied, requests keep the set in force before it (the files change first). */
  private frozen: ActivePolicy | undefined;

  private constructor(
    private readonly ledger: Ledger,
    private readonly paths: HomePaths,
  ) {}

  /** Opens the store, installing and recording the defaults on a home that never applied a set. */
  static async open(ledger: Ledger, paths: HomePaths): Promise<PolicyStore> {
    const store = new PolicyStore(ledger, paths);
    if (appliedPolicy(ledger.database) === null) {
      const found = readPolicyDir(paths);
      const files = found.length > 0 ? found : [...DEFAULT_POLICIES];
      PolicyEngine.load(files); // a directory that does not parse is refused here, before anything is recorded
      await store.record(files, 'gate', found.length > 0 ? 'found in the policy directory at first start' : 'built-in preset defaults', found.length === 0);
    }
    return store;
  }

  /** The engine for the applied set, or why the files on disk cannot be trusted. */
  current(): ActivePolicy {
    if (this.frozen !== undefined) return this.frozen;
    const signature = this.dirSignature();
    if (signature === this.signature && this.state !== undefined) return this.state;
    this.signature = signature;
    this.state = this.load();
    return this.state;
  }

  /**
   * Makes `files` the whole active set: validated (the caller checks them against the actions' schema first),
   * written to the directory (replacing every previous file) and recorded in the ledger with its hash. The gate
   * uses it for the next request.
   */
  async apply(files: readonly PolicyFile[], by: string): Promise<{ hash: string; version: string }> {
    PolicyEngine.load(files);
    return this.record(files, by, 'applied', true);
  }

  /** Records `policy.tampered` once per distinct unexpected hash (called by the pipeline when it denies). */
  async reportTamper(state: Extract<ActivePolicy, { ok: false }>): Promise<void> {
    if (this.reportedTamper === state.found) return;
    this.reportedTamper = state.found;
    await this.ledger.append({ type: 'policy.tampered', principal: 'gate', decision: 'deny', payload: { expected: state.expected, found: state.found } });
  }

  private async record(files: readonly PolicyFile[], by: string, note: string, write: boolean): Promise<{ hash: string; version: string }> {
    const hash = policyHash(files);
    const previous = appliedPolicy(this.ledger.database);
    const version = String(previous === null ? 1 : Number(previous.version) + 1);
    this.frozen = this.state ?? this.load();
    try {
      if (write) writePolicyDir(this.paths, files);
      await this.ledger.append(
        { type: 'policy.applied', principal: by, payload: { hash, version, files: files.map((f) => f.name), note } },
        {
          write: (tx) => {
            const set = tx.prepare('INSERT INTO gate_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
            set.run(HASH_KEY, hash);
            set.run(VERSION_KEY, version);
          },
        },
      );
    } finally {
      this.frozen = undefined;
    }
    this.signature = '';
    this.reportedTamper = null;
    return { hash, version };
  }

  private load(): ActivePolicy {
    const applied = appliedPolicy(this.ledger.database);
    const files = readPolicyDir(this.paths);
    const found = files.length === 0 ? 'none' : policyHash(files);
    if (applied === null || found !== applied.hash) {
      const expected = applied?.hash ?? 'none';
      return { ok: false, expected, found, message: `the policy files in ${policyDir(this.paths)} changed without \`lattice policy apply\` (hash ${found.slice(0, 12)}…, applied ${expected.slice(0, 12)}…); apply a set or restore the files` };
    }
    return { ok: true, engine: PolicyEngine.load(files), hash: applied.hash, version: applied.version };
  }

  private dirSignature(): string {
    const dir = policyDir(this.paths);
    try {
      const names = readdirSync(dir).filter((f) => f.endsWith('.cedar')).sort();
      return names
        .map((name) => {
          const s = statSync(join(dir, name), { bigint: true });
          return `${name}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        })
        .join('/');
    } catch (error) {
      return `unreadable:${describeError(error)}`; // loads again, and fails closed there
    }
  }
}

/** Replaces the directory's contents with `files`: a new directory is written beside it and renamed into place. */
function writePolicyDir(paths: HomePaths, files: readonly PolicyFile[]): void {
  for (const f of files) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.cedar$/.test(f.name)) throw new LatticeError('POLICY_INVALID', `policy file name ${JSON.stringify(f.name)} must look like name.cedar`);
  }
  const dir = policyDir(paths);
  const next = `${dir}.new-${randomToken(6)}`;
  mkdirSync(next, { mode: 0o700 });
  try {
    for (const f of files) writeFileAtomic(join(next, f.name), f.text, 0o600);
    const old = `${dir}.old-${randomToken(6)}`;
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(next, dir);
    rmSync(old, { recursive: true, force: true });
    fsyncDir(paths.root);
  } catch (error) {
    rmSync(next, { recursive: true, force: true });
    throw error;
  }
}
