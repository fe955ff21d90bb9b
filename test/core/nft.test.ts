/** The nftables ruleset that enforces the presets, checked by the real `nft -c`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LatticeError } from '../../core/errors.ts';
import { renderNftRuleset, type NftOptions, type OverlayPeer } from '../../core/identity/nft.ts';
import { parseCidr } from '../../core/identity/overlay.ts';
import { tempDir } from '../helpers.ts';

const NFT = '/usr/sbin/nft';
const invalid = (e: unknown) => e instanceof LatticeError && e.code === 'INVALID_ARGUMENT';

/** Runs `nft -c -f` (check only: nothing is applied) on a ruleset and fails with nft's own words. */
function nftCheck(ruleset: string): void {
  if (!existsSync(NFT)) assert.fail(`${NFT} is missing: install nftables (apt-get install nftables); this test never skips`);
  const file = join(tempDir('lattice-nft-'), 'lattice.nft');
  writeFileSync(file, ruleset);
  const result = spawnSync(NFT, ['-c', '-f', file], { encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  const hint = /netlink|permission|not permitted/i.test(result.stderr) ? ' (nft -c needs netlink access; run as root or with CAP_NET_ADMIN)' : '';
  assert.equal(result.status, 0, `nft -c rejected the ruleset${hint}:\n${result.stderr}\n${ruleset}`);
}

const cidr = parseCidr('10.96.0.0/16');
const peers: OverlayPeer[] = [
  { id: 'acme-coord-1', overlayIp: '10.96.0.10', workspace: 'acme', preset: 'coordinator' },
  { id: 'acme-coord-2', overlayIp: '10.96.0.12', workspace: 'acme', preset: 'coordinator' },
  { id: 'acme-sandbox', overlayIp: '10.96.0.11', workspace: 'acme', preset: 'sandboxed' },
  { id: 'acme.isolated_1', overlayIp: '10.96.3.1', workspace: 'acme', preset: 'isolated' },
  { id: 'beta-coord', overlayIp: '10.96.1.20', workspace: 'beta.prod-2', preset: 'coordinator' },
  { id: 'beta-sandbox', overlayIp: '10.96.1.21', workspace: 'beta.prod-2', preset: 'sandboxed' },
  { id: 'beta-isolated', overlayIp: '10.96.1.22', workspace: 'beta.prod-2', preset: 'isolated' },
];
const options: NftOptions = {
  cidr,
  gateAddress: '10.96.0.1',
  toolServices: ['10.96.200.0/24', '10.96.200.0/25', '192.0.2.0/24'],
  isolatedAllow: {
    'acme.isolated_1': [
      { cidr: '10.96.0.10/32', port: 443, proto: 'tcp' },
      { cidr: '198.51.100.0/24', port: 53, proto: 'udp' },
    ],
    'beta-isolated': [{ cidr: '10.96.1.20/32', port: 8443, proto: 'tcp' }],
  },
};

describe('nftables ruleset', () => {
  it('renders a ruleset for two workspaces and all three presets that `nft -c` accepts', () => {
    nftCheck(renderNftRuleset(peers, options));
  });

  it('renders a valid ruleset with no peers, no tool services and no allowlists', () => {
    nftCheck(renderNftRuleset([], { cidr, gateAddress: '10.96.0.1', toolServices: [], isolatedAllow: {} }));
  });

  it('replaces the table in one transaction and drops by default', () => {
    const ruleset = renderNftRuleset(peers, options);
    const lines = ruleset.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    assert.deepEqual(lines.slice(0, 5), [
      'define lattice_overlay = 10.96.0.0/16',
      'define lattice_gate = 10.96.0.1',
      'table inet lattice {}',
      'delete table inet lattice',
      'table inet lattice {',
    ]);
    assert.match(ruleset, /\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n/);
  });

  it('encodes each preset as literal rules', () => {
    const ruleset = renderNftRuleset(peers, options);
    for (const rule of [
      'ip daddr @sandboxed drop',
      'ip daddr @isolated drop',
      'ip daddr @coordinators_acme ip saddr != @members_acme drop',
      'ip daddr @coordinators_beta.prod-2 ip saddr != @members_beta.prod-2 drop',
      'ip saddr @peers ip daddr $lattice_gate accept',
      'ip saddr @sandboxed ip daddr @tool_services accept',
      'ip saddr @coordinators_acme ip daddr @members_acme accept',
      'ip saddr 10.96.3.1 ip daddr 10.96.0.10/32 tcp dport 443 accept',
      'ip saddr 10.96.3.1 ip daddr 198.51.100.0/24 udp dport 53 accept',
      'ip saddr 10.96.1.22 ip daddr 10.96.1.20/32 tcp dport 8443 accept',
    ]) {
      assert.ok(ruleset.includes(`\t\t${rule}`), rule);
    }
    // Ingress refusals come before every accept of a new connection.
    assert.ok(ruleset.indexOf('ip daddr @sandboxed drop') < ruleset.indexOf('ip saddr @peers ip daddr $lattice_gate accept'));
    assert.match(ruleset, /set coordinators_acme \{\n\t\ttype ipv4_addr\n\t\telements = \{\n\t\t\t10\.96\.0\.10 comment "acme-coord-1",\n\t\t\t10\.96\.0\.12 comment "acme-coord-2"\n\t\t\}/);
  });

  it('renders the same ruleset whatever the order of the peers', () => {
    assert.equal(renderNftRuleset([...peers].reverse(), options), renderNftRuleset(peers, options));
  });

  it('refuses peer ids and workspaces outside [A-Za-z0-9_.-]', () => {
    const base = peers[0];
    assert.ok(base !== undefined);
    for (const id of ['acme coord', 'acme;coord', 'a"b', 'a\nb', 'a}b', 'a@b', '', 'x'.repeat(65)]) {
      assert.throws(() => renderNftRuleset([{ ...base, id }], options), invalid, JSON.stringify(id));
      assert.throws(() => renderNftRuleset([{ ...base, workspace: id }], options), invalid, JSON.stringify(id));
    }
  });

  it('refuses addresses outside the pool, duplicates, unknown presets and stray allowlists', () => {
    const base = { id: 'p', overlayIp: '10.96.5.5', workspace: 'w', preset: 'sandboxed' } as const;
    const none = { ...options, isolatedAllow: {} };
    const cases: [string, () => unknown][] = [
      ['gate address', () => renderNftRuleset([{ ...base, overlayIp: '10.96.0.1' }], none)],
      ['broadcast', () => renderNftRuleset([{ ...base, overlayIp: '10.96.255.255' }], none)],
      ['outside', () => renderNftRuleset([{ ...base, overlayIp: '10.97.0.2' }], none)],
      ['injected ip', () => renderNftRuleset([{ ...base, overlayIp: '10.96.5.5 accept' }], none)],
      ['duplicate id', () => renderNftRuleset([base, { ...base, overlayIp: '10.96.5.6' }], none)],
      ['duplicate ip', () => renderNftRuleset([base, { ...base, id: 'q' }], none)],
      ['preset', () => renderNftRuleset([{ ...base, preset: 'open' as never }], none)],
      ['wrong gate', () => renderNftRuleset([base], { ...none, gateAddress: '10.96.0.2' })],
      ['tool service', () => renderNftRuleset([base], { ...none, toolServices: ['10.96.200.1/24'] })],
      ['allowlist of a non-peer', () => renderNftRuleset([base], { ...none, isolatedAllow: { ghost: [] } })],
      ['allowlist of a sandboxed peer', () => renderNftRuleset([base], { ...none, isolatedAllow: { p: [] } })],
      ...[0, 65536, 1.5].map((port): [string, () => unknown] => [
        `port ${port}`,
        () => renderNftRuleset([{ ...base, preset: 'isolated' }], { ...none, isolatedAllow: { p: [{ cidr: '10.96.0.10/32', port, proto: 'tcp' }] } }),
      ]),
      ['proto', () => renderNftRuleset([{ ...base, preset: 'isolated' }], { ...none, isolatedAllow: { p: [{ cidr: '10.96.0.10/32', port: 1, proto: 'icmp' as never }] } })],
    ];
    for (const [name, render] of cases) assert.throws(render, invalid, name);
  });
});
