/**
 * Address classification: every special-purpose range is not public, IPv6 forms embedding an IPv4 address are
 * judged by that address, and anything that is not an address is not public.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPublicAddress } from '../../providers/effects/address.ts';

// Pinned as literals: one address per range the classifier must refuse.
const NOT_PUBLIC = {
  'loopback': ['127.0.0.1', '127.255.255.254', '::1'],
  'private': ['10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', 'fc00::1', 'fdff:ffff::1'],
  'link-local': ['169.254.169.254', 'fe80::1', 'febf::1'],
  'carrier-grade NAT': ['100.64.0.1', '100.127.255.255'],
  'unspecified': ['0.0.0.0', '0.1.2.3', '::'],
  'multicast': ['224.0.0.1', '239.255.255.250', 'ff02::1'],
  'broadcast and reserved': ['255.255.255.255', '240.0.0.1'],
  'documentation': ['192.0.2.1', '198.51.100.1', '203.0.113.1', '2001:db8::1', '3fff::1'],
  'benchmarking': ['198.18.0.1', '198.19.255.255', '2001:2::1'],
  'IETF protocol assignments': ['192.0.0.8'],
  'IPv4-mapped private': ['::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:10.0.0.1', '::ffff:169.254.169.254'],
  'IPv4-compatible private': ['::127.0.0.1', '::a00:1'],
  'NAT64 of a private address': ['64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe'],
  '6to4 of a private address': ['2002:7f00:1::', '2002:c0a8:101::1'],
  'Teredo': ['2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
  'outside global unicast': ['100::1', '64:ff9b:1::1', '::ffff:0:1.2.3.4', '4000::1'],
  'zone ids': ['fe80::1%eth0', '2606:4700::1111%1'],
  'not an address': ['', 'localhost', 'example.com', '1.2.3', '256.1.1.1', '[::1]', '1.2.3.4 ', '::1::'],
} as const;

const PUBLIC = ['1.1.1.1', '8.8.8.8', '93.184.215.14', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '2606:4700:4700::1111', '2a00:1450::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'];

describe('isPublicAddress', () => {
  for (const [range, addresses] of Object.entries(NOT_PUBLIC)) {
    it(`refuses ${range}`, () => {
      for (const ip of addresses) assert.equal(isPublicAddress(ip), false, ip);
    });
  }

  it('allows public unicast addresses of both families, including embedded public IPv4', () => {
    for (const ip of PUBLIC) assert.equal(isPublicAddress(ip), true, ip);
  });

  it('judges IPv4-mapped, -compatible, NAT64 and 6to4 addresses exactly as the IPv4 address they embed', () => {
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number);
        const expected = isPublicAddress(v4);
        for (const v6 of [`::ffff:${v4}`, `::ffff:${hex(a, b)}:${hex(c, d)}`, `::${v4}`, `64:ff9b::${v4}`, `2002:${hex(a, b)}:${hex(c, d)}::1`]) {
          assert.equal(isPublicAddress(v6), expected, `${v6} vs ${v4}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws, whatever the input', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.ipV6(), fc.ipV4Extended()), (s) => typeof isPublicAddress(s) === 'boolean'));
  });
});
