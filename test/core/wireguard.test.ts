/** WireGuard keys (checked against the real `wg`), the agent's wg-quick config and the AllowedIPs of each preset. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateWireGuardKeyPair, isWireGuardKey, wireGuardPublicKey } from '../../core/crypto/x25519.ts';
import { LatticeError } from '../../core/errors.ts';
import { parseCidr } from '../../core/identity/overlay.ts';
import { allowedIpsForPreset, renderWgQuickConfig, type WgQuickInput } from '../../core/identity/wireguard.ts';

const WG = '/usr/bin/wg';
const invalid = (e: unknown) => e instanceof LatticeError && e.code === 'INVALID_ARGUMENT';

function wg(args: readonly string[], input?: string): string {
  if (!existsSync(WG)) assert.fail(`${WG} is missing: install wireguard-tools (apt-get install wireguard-tools); these tests never skip`);
  const result = spawnSync(WG, args, { input, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  assert.equal(result.status, 0, `wg ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout.trim();
}

describe('WireGuard keys', () => {
  it('derives the same public key as `wg pubkey` for 20 generated key pairs', () => {
    for (let i = 0; i < 20; i++) {
      const { privateKey, publicKey } = generateWireGuardKeyPair();
      const expected = wg(['pubkey'], privateKey);
      assert.equal(publicKey, expected);
      assert.equal(wireGuardPublicKey(privateKey), expected);
    }
  });

  it('derives the public key of keys made by `wg genkey`', () => {
    for (let i = 0; i < 5; i++) {
      const privateKey = wg(['genkey']);
      assert.equal(wireGuardPublicKey(privateKey), wg(['pubkey'], privateKey));
    }
  });

  it('prints keys as `wg genkey` does: 44 characters of base64, clamped private scalar', () => {
    for (let i = 0; i < 20; i++) {
      const { privateKey, publicKey } = generateWireGuardKeyPair();
      assert.match(privateKey, /^[A-Za-z0-9+/]{43}=$/);
      assert.match(publicKey, /^[A-Za-z0-9+/]{43}=$/);
      const raw = Buffer.from(privateKey, 'base64');
      assert.equal((raw[0] ?? 0) & 7, 0);
      assert.equal((raw[31] ?? 0) & 0xc0, 0x40);
    }
  });

  it('refuses private keys that are not 32 bytes of canonical base64, without echoing them', () => {
    const good = generateWireGuardKeyPair().privateKey;
    const hostile = [
      '',
      `${good}\n`,
      ` ${good}`,
      good.slice(0, 43),
      `${good.slice(0, 43)}==`,
      Buffer.alloc(33, 1).toString('base64'),
      Buffer.alloc(31, 1).toString('base64'),
      Buffer.from(good, 'base64').toString('base64url'),
      `${'A'.repeat(42)}B=`, // non-canonical: the last character carries bits beyond the 32nd byte
      `${good.slice(0, 20)}#${good.slice(21)}`,
    ];
    assert.equal(isWireGuardKey(good), true);
    for (const bad of hostile) {
      assert.equal(isWireGuardKey(bad), false, JSON.stringify(bad));
      assert.throws(
        () => wireGuardPublicKey(bad),
        (e: unknown) => invalid(e) && (bad.length < 8 || !(e as Error).message.includes(bad)),
        JSON.stringify(bad),
      );
    }
  });
});

describe('wg-quick config', () => {
  const cidr = parseCidr('10.96.0.0/16');
  const agent = generateWireGuardKeyPair();
  const gate = generateWireGuardKeyPair();
  const input: WgQuickInput = {
    privateKey: agent.privateKey,
    address: '10.96.4.7',
    cidr,
    gatePublicKey: gate.publicKey,
    endpoint: 'gate.example.com:51820',
    allowedIps: ['10.96.0.1/32', '10.96.200.0/24'],
  };

  it('renders exactly the expected lines', () => {
    assert.equal(
      renderWgQuickConfig(input),
      [
        '[Interface]',
        `PrivateKey = ${agent.privateKey}`,
        'Address = 10.96.4.7/32',
        '',
        '[Peer]',
        `PublicKey = ${gate.publicKey}`,
        'Endpoint = gate.example.com:51820',
        'AllowedIPs = 10.96.0.1/32, 10.96.200.0/24',
        'PersistentKeepalive = 25',
        '',
      ].join('\n'),
    );
  });

  it('takes the keepalive given, and leaves it out for 0', () => {
    assert.match(renderWgQuickConfig({ ...input, persistentKeepalive: 10 }), /\nPersistentKeepalive = 10\n$/);
    assert.doesNotMatch(renderWgQuickConfig({ ...input, persistentKeepalive: 0 }), /PersistentKeepalive/);
    for (const bad of [-1, 1.5, 65536, Number.NaN]) assert.throws(() => renderWgQuickConfig({ ...input, persistentKeepalive: bad }), invalid, String(bad));
  });

  it('accepts IPv4 and bracketed IPv6 endpoints', () => {
    for (const endpoint of ['203.0.113.9:51820', '[2001:db8::1]:1', '[::ffff:192.0.2.1]:65535', 'gate-1.lattice.internal:443', 'gate:1']) {
      assert.match(renderWgQuickConfig({ ...input, endpoint }), new RegExp(`\nEndpoint = ${endpoint.replace(/[[\].]/g, '\\$&')}\n`));
    }
  });

  it('refuses endpoint injection and malformed endpoints', () => {
    const hostile = [
      'gate.example.com:51820\nPostUp = rm -rf /',
      'gate.example.com:51820\r\nPostUp = rm -rf /',
      'gate.example.com:51820 # comment',
      'gate.example.com=1:51820',
      'gate.example.com',
      'gate.example.com:0',
      'gate.example.com:65536',
      'gate.example.com:051820',
      'gate.example.com:+80',
      ' gate.example.com:51820',
      'gate_1.example.com:51820',
      '-gate.example.com:51820',
      'gate..example.com:51820',
      'gate.example.com.:51820',
      '10.96.0.300:51820',
      '2001:db8::1:51820',
      '[2001:db8::1%eth0]:51820',
      '[not-ipv6]:51820',
      '',
    ];
    for (const endpoint of hostile) assert.throws(() => renderWgQuickConfig({ ...input, endpoint }), invalid, JSON.stringify(endpoint));
  });

  it('refuses AllowedIPs injection and anything but IPv4 CIDRs', () => {
    const hostile = [
      ['10.96.0.1/32\nPostUp = rm -rf /'],
      ['10.96.0.1/32, 0.0.0.0/0'],
      ['10.96.0.1/32 # all'],
      ['10.96.0.1'],
      ['10.96.0.1/33'],
      ['10.96.1.0/16'],
      ['::/0'],
      [],
    ];
    for (const allowedIps of hostile) assert.throws(() => renderWgQuickConfig({ ...input, allowedIps }), invalid, JSON.stringify(allowedIps));
  });

  it('refuses bad keys and addresses', () => {
    const key = gate.publicKey;
    for (const bad of [`${key}\nPostUp = rm -rf /`, key.slice(0, 43), `${key.slice(0, 43)}#`, 'not a key']) {
      assert.throws(() => renderWgQuickConfig({ ...input, privateKey: bad }), invalid, JSON.stringify(bad));
      assert.throws(() => renderWgQuickConfig({ ...input, gatePublicKey: bad }), invalid, JSON.stringify(bad));
    }
    for (const address of ['10.96.0.0', '10.96.0.1', '10.96.255.255', '10.97.0.2', '10.96.4.7/32', '10.96.4.7\n', '010.96.4.7']) {
      assert.throws(() => renderWgQuickConfig({ ...input, address }), invalid, JSON.stringify(address));
    }
  });
});

describe('AllowedIPs per preset', () => {
  const cidr = parseCidr('10.96.0.0/16');
  const tools = ['10.96.200.0/24', '10.96.201.5/32'];
  const allowlist = ['10.96.9.9/32'];

  it('sandboxed: the gate and the tool services', () => {
    assert.deepEqual(allowedIpsForPreset('sandboxed', cidr, tools, allowlist), ['10.96.0.1/32', '10.96.200.0/24', '10.96.201.5/32']);
  });

  it('coordinator: the whole overlay', () => {
    assert.deepEqual(allowedIpsForPreset('coordinator', cidr, tools, allowlist), ['10.96.0.0/16']);
  });

  it('isolated: the gate and the allowlist only', () => {
    assert.deepEqual(allowedIpsForPreset('isolated', cidr, tools, allowlist), ['10.96.0.1/32', '10.96.9.9/32']);
    assert.deepEqual(allowedIpsForPreset('isolated', cidr, tools, []), ['10.96.0.1/32']);
  });

  it('refuses malformed CIDRs and unknown presets', () => {
    assert.throws(() => allowedIpsForPreset('sandboxed', cidr, ['10.96.200.1/24'], []), invalid);
    assert.throws(() => allowedIpsForPreset('isolated', cidr, [], ['10.96.9.9\nPostUp = x']), invalid);
    assert.throws(() => allowedIpsForPreset('open' as never, cidr, [], []), invalid);
  });
});
