/**
 * Sandbox profiles: TOML files naming what an agent CLI needs. Built-in ones live in `profiles/` beside the
 * binary; a user's own in `$LATTICE_HOME/profiles/NAME.toml` (a user file wins over a built-in of the same name).
 * A profile may `extends = "NAME"`: lists are joined, tables merged key by key, other values replaced. The built-in
 * default profile's `protect` list applies to every profile, whatever it extends: a profile can add paths, never
 * take one away (PROTECT_FLOOR).
 *
 * Validated with ajv when loaded: an unknown key, a wrong type or a bad value is an error naming the key.
 */
import type { ErrorObject } from 'ajv';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { LatticeError, describeError } from '../core/errors.ts';
import { shippedTree } from '../core/runtime.ts';
import { POLICY_PRESETS } from '../core/identity/wireguard.ts';
import { MCP_CLIENTS, type McpClient } from '../mcp/client-config.ts';
import { compiledOnUse } from '../core/server/validate.ts';

export const HOST_NAME = '^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\\.(?!-)[a-z0-9-]{1,63}(?<!-))+$';
export const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const ROUTE_NAME = '^[a-z][a-z0-9-]{0,31}$';
/** A profile's name is also its private home's directory name (`homes/<name>`): one plain file name. */
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A path below the private home: names separated by single slashes, none empty, `.` or `..`. */
const HOME_PATH = '^(?!(.*/)?\\.{1,2}(/|$))[^/\\u0000]+(/[^/\\u0000]+)*$';

export interface CredentialRoute {
  /** `https://host[:port][/base]` (or `http://` to a loopback upstream, e.g. a local model server). */
  readonly upstream: string;
  /** Header the credential goes in, e.g. `x-api-key` or `authorization`. */
  readonly header: string;
  /** `{key}` is replaced with the credential, e.g. `Bearer {key}`. */
  readonly format: string;
  /** `env:NAME` (the environment of `lattice sandbox`) or `secret:NAME` (`lattice secrets set`). */
  readonly key_source: string;
  /** Set inside to `http://127.0.0.1:<port>`, e.g. ANTHROPIC_BASE_URL. */
  readonly base_url_env?: string;
  /** Set inside to a placeholder that is not the key, for CLIs that insist on having one. */
  readonly placeholder_env?: string;
  /** Whether the agent may upgrade requests to another protocol (WebSocket) through the route; off by default. */
  readonly allow_upgrade?: boolean;
}

export interface SandboxProfile {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly command: readonly string[];
  readonly preset: string;
  readonly ttl: string;
  readonly allowHosts: readonly string[];
  readonly passEnv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly roMounts: readonly string[];
  readonly rwMounts: readonly string[];
  /** Paths inside the workspace the agent may not change (read-only when they exist at start). */
  readonly protect: readonly string[];
  /** Directories (relative to the private home) made at start, e.g. `.claude`. */
  readonly homeDirs: readonly string[];
  readonly network: boolean;
  readonly credentials: Readonly<Record<string, CredentialRoute>>;
  /** The MCP client whose configuration in the private home gets the lattice MCP server (null: none). */
  readonly mcpClient: McpClient | null;
}

interface RawProfile {
  extends?: string;
  sandbox?: {
    description?: string;
    command?: string[];
    preset?: string;
    ttl?: string;
    allow_hosts?: string[];
    pass_env?: string[];
    env?: Record<string, string>;
    ro_mounts?: string[];
    rw_mounts?: string[];
    protect?: string[];
    home_dirs?: string[];
    network?: boolean;
    mcp_client?: McpClient;
    agent?: { credentials?: Record<string, CredentialRoute> };
  };
}

const strings = (pattern?: string) => ({ type: 'array', items: pattern === undefined ? { type: 'string', minLength: 1 } : { type: 'string', pattern }, uniqueItems: true }) as const;
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    extends: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
    sandbox: {
      type: 'object',
      additionalProperties: false,
      properties: {
        description: { type: 'string' },
        command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        preset: { type: 'string', enum: [...POLICY_PRESETS] },
        ttl: { type: 'string', pattern: '^[0-9]+[smh]$' },
        allow_hosts: strings(HOST_NAME),
        pass_env: strings(ENV_NAME),
        env: { type: 'object', propertyNames: { pattern: ENV_NAME }, additionalProperties: { type: 'string' } },
        ro_mounts: strings('^(/|~/)'),
        rw_mounts: strings('^(/|~/)'),
        protect: strings('^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$'),
        home_dirs: strings(HOME_PATH),
        network: { type: 'boolean' },
        mcp_client: { type: 'string', enum: [...MCP_CLIENTS] },
        agent: {
          type: 'object',
          additionalProperties: false,
          properties: {
            credentials: {
              type: 'object',
              propertyNames: { pattern: ROUTE_NAME },
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                required: ['upstream', 'header', 'format', 'key_source'],
                properties: {
                  upstream: { type: 'string', pattern: '^https?://' },
                  header: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' },
                  format: { type: 'string', pattern: '\\{key\\}' },
                  key_source: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|secret:[A-Za-z_][A-Za-z0-9_.-]*)$' },
                  base_url_env: { type: 'string', pattern: ENV_NAME },
                  placeholder_env: { type: 'string', pattern: ENV_NAME },
                  allow_upgrade: { type: 'boolean' },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

const validate = compiledOnUse<RawProfile>(SCHEMA, { allErrors: true });

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (e === undefined) return 'invalid';
  const key = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(top level)';
  if (e.keyword === 'additionalProperties') return `unknown key ${key === '(top level)' ? '' : `${key}.`}${String((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'propertyNames') return `bad name in ${key}: ${String((e.params as { propertyName: string }).propertyName)}`;
  return `${key} ${e.message ?? 'is invalid'}`;
}

/** Where the built-in profiles are: `profiles/` of the checkout, or inside the binary. */
export function builtinProfileDir(): string {
  const dir = shippedTree('profiles');
  if (!existsSync(join(dir, 'default.toml'))) throw new LatticeError('PROFILE_INVALID', `the built-in profiles are missing (looked in ${dir})`);
  return dir;
}

function profileFile(name: string, home: string): string {
  for (const dir of [join(home, 'profiles'), builtinProfileDir()]) {
    const file = join(dir, `${name}.toml`);
    if (existsSync(file)) return file;
  }
  throw new LatticeError('PROFILE_NOT_FOUND', `no sandbox profile named '${name}' (known: ${listProfiles(home).join(', ')}); add $LATTICE_HOME/profiles/${name}.toml to define it`);
}

export function listProfiles(home: string): string[] {
  const names = new Set<string>();
  for (const dir of [builtinProfileDir(), join(home, 'profiles')]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith('.toml') && PROFILE_NAME.test(f.slice(0, -5))) names.add(f.slice(0, -5));
  }
  return [...names].sort();
}

function readRaw(file: string): RawProfile {
  let value: unknown;
  try {
    value = parseToml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new LatticeError('PROFILE_INVALID', `cannot read the profile ${file}: ${describeError(error)}`, { cause: error });
  }
  if (!validate(value)) throw new LatticeError('PROFILE_INVALID', `${file}: ${describe(validate.errors)}`);
  return value;
}

type Section = NonNullable<RawProfile['sandbox']>;

/** Child over parent: lists joined (no repeats), tables merged, other values replaced. */
function merge(parent: Section, child: Section): Section {
  const out: Record<string, unknown> = { ...parent };
  for (const [key, value] of Object.entries(child)) {
    const base = out[key];
    if (Array.isArray(value) && Array.isArray(base) && key !== 'command') out[key] = [...new Set([...(base as unknown[]), ...value])];
    else if (key === 'env' && base !== undefined) out[key] = { ...(base as Record<string, string>), ...(value as Record<string, string>) };
    else if (key === 'agent' && base !== undefined) {
      out[key] = { credentials: { ...(base as Section['agent'])?.credentials, ...(value as Section['agent'])?.credentials } };
    } else out[key] = value;
  }
  return out;
}

/**
 * The paths every profile protects: the built-in default profile's list (not a user's own default.toml, which may
 * drop some). A profile that does not extend the default still keeps .git, shell startup files and tool settings
 * read-only.
 */
function protectFloor(): string[] {
  return readRaw(join(builtinProfileDir(), 'default.toml')).sandbox?.protect ?? [];
}

/** Loads a profile by name (or from `file`), following `extends` (at most 8 deep, no cycles). */
export function loadProfile(home: string, name: string | undefined, file?: string): SandboxProfile {
  if (name !== undefined && !PROFILE_NAME.test(name)) {
    throw new LatticeError('PROFILE_INVALID', `'${name}' is not a profile name: letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
  const chain: { file: string; raw: RawProfile }[] = [];
  let next: { file: string } | undefined = { file: file !== undefined ? resolve(file) : profileFile(name ?? 'default', home) };
  while (next !== undefined) {
    if (chain.length === 8 || chain.some((c) => c.file === next?.file)) throw new LatticeError('PROFILE_INVALID', `${chain[0]?.file ?? ''}: extends loops or is deeper than 8`);
    if (!existsSync(next.file)) throw new LatticeError('PROFILE_NOT_FOUND', `no profile file ${next.file}`);
    const raw = readRaw(next.file);
    chain.push({ file: next.file, raw });
    next = raw.extends === undefined ? undefined : { file: profileFile(raw.extends, home) };
  }
  const merged = chain.reduceRight<Section>((acc, { raw }) => merge(acc, raw.sandbox ?? {}), { protect: protectFloor() });
  const top = chain[0] as { file: string };
  const credentials = merged.agent?.credentials ?? {};
  for (const [route, r] of Object.entries(credentials)) checkUpstream(top.file, route, r.upstream);
  return {
    name: file !== undefined ? (name ?? 'custom') : (name ?? 'default'),
    file: top.file,
    description: merged.description ?? '',
    command: merged.command ?? ['/bin/sh'],
    preset: merged.preset ?? 'sandboxed',
    ttl: merged.ttl ?? '8h',
    allowHosts: merged.allow_hosts ?? [],
    passEnv: merged.pass_env ?? [],
    env: merged.env ?? {},
    roMounts: merged.ro_mounts ?? [],
    rwMounts: merged.rw_mounts ?? [],
    protect: merged.protect ?? [],
    homeDirs: merged.home_dirs ?? [],
    network: merged.network ?? true,
    credentials,
    mcpClient: merged.mcp_client ?? null,
  };
}

/** A route's upstream: https to a host name, or plain http only to a loopback address. */
function checkUpstream(file: string, route: string, upstream: string): void {
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new LatticeError('PROFILE_INVALID', `${file}: sandbox.agent.credentials.${route}.upstream is not a URL: ${upstream}`);
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.protocol === 'http:' && !loopback) {
    throw new LatticeError('PROFILE_INVALID', `${file}: sandbox.agent.credentials.${route}.upstream must be https:// (plain http only to a loopback upstream)`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new LatticeError('PROFILE_INVALID', `${file}: sandbox.agent.credentials.${route}.upstream must not carry credentials, a query or a fragment`);
  }
}
