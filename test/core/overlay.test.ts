/** Overlay CIDR parsing and agent address allocation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LatticeError } from '../../core/errors.ts';
import { allocateAddress, gateAddress, parseCidr, PoolExhausted } from '../../core/identity/overlay.ts';

const invalid = (e: unknown) => e instanceof LatticeError && e.code === 'INVALID_ARGUMENT';

/** The test's own dotted-quad arithmetic, independent of the module under test. */
function toInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  assert.equal(parts.length, 4, ip);
  return parts.reduce((acc, octet) => acc * 256 + octet, 0);
}
function toIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

describe('overlay CIDR', () => {
  it('accepts canonical pools from /8 to /30', () => {
    assert.deepEqual(parseCidr('10.96.0.0/16'), { text: '10.96.0.0/16', network: 0x0a600000, prefix: 16 });
    assert.deepEqual(parseCidr('10.0.0.0/8'), { text: '10.0.0.0/8', network: 0x0a000000, prefix: 8 });
    assert.deepEqual(parseCidr('192.168.7.4/30'), { text: '192.168.7.4/30', network: 0xc0a80704, prefix: 30 });
    assert.deepEqual(parseCidr('100.64.0.0/10'), { text: '100.64.0.0/10', network: 0x64400000, prefix: 10 });
  });

  it('refuses host bits, naming the network', () => {
    assert.throws(() => parseCidr('10.96.1.0/16'), (e: unknown) => invalid(e) && /host bits/.test((e as Error).message) && /10\.96\.0\.0\/16/.test((e as Error).message));
  });

  it('refuses everything else', () => {
    const bad = [
      '', '10.96.0.0', '10.96.0.0/', '10.96.0.0/7', '10.96.0.0/31', '10.96.0.0/32', '10.96.0.0/016', '10.96.0.0/+16',
      '10.96.0.0/-1', '010.96.0.0/16', '10.096.0.0/16', '256.0.0.0/8', '10.96/16', '10.96.0.0.0/16', '0x0a.0.0.0/8',
      ' 10.96.0.0/16', '10.96.0.0/16 ', '10.96.0.0/16\n', '10.96.0.0/16\nPostUp = x', '10.96.0.0 /16', '::/0', '10.96.0.0/16/16',
    ];
    for (const text of bad) assert.throws(() => parseCidr(text), invalid, JSON.stringify(text));
  });

  it('reserves the first host for the gate', () => {
    assert.equal(gateAddress(parseCidr('10.96.0.0/16')), '10.96.0.1');
    assert.equal(gateAddress(parseCidr('192.168.7.4/30')), '192.168.7.5');
  });
});

describe('address allocation', () => {
  const pool = parseCidr('10.96.0.0/16');

  it('never returns the network, broadcast or gate address, even at the edges of the random range', () => {
    const small = parseCidr('10.96.0.8/29');
    const seen = new Set<string>();
    for (const r of [0, 0.2, 0.5, 0.999_999_999, 1 - Number.EPSILON]) seen.add(allocateAddress(small, () => false, () => r));
    for (let i = 0; i < 500; i++) seen.add(allocateAddress(small, () => false));
    assert.deepEqual([...seen].sort(), ['10.96.0.10', '10.96.0.11', '10.96.0.12', '10.96.0.13', '10.96.0.14']);
    assert.equal(allocateAddress(parseCidr('10.96.0.0/30'), () => false), '10.96.0.2');
  });

  it('finds a free address quickly with 5,000 taken in a /16 and never returns a taken one', () => {
    const taken = new Set<string>();
    while (taken.size < 5000) taken.add(toIp(0x0a600002 + Math.floor(Math.random() * 65533)));
    const started = performance.now();
    for (let i = 0; i < 2000; i++) {
      const ip = allocateAddress(pool, (candidate) => taken.has(candidate));
      assert.equal(taken.has(ip), false, ip);
      taken.add(ip);
    }
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1000, `2,000 allocations took ${elapsed.toFixed(0)} ms`);
  });

  it('finds the only free address of a full /16 by scanning', () => {
    const free = '10.96.123.45';
    const started = performance.now();
    assert.equal(allocateAddress(pool, (ip) => ip !== free, () => 0.9), free);
    assert.ok(performance.now() - started < 1000);
  });

  it('throws PoolExhausted when every address is taken', () => {
    const tiny = parseCidr('10.96.0.0/30');
    const asked: string[] = [];
    assert.throws(
      () => allocateAddress(tiny, (ip) => (asked.push(ip), true)),
      (e: unknown) => e instanceof PoolExhausted && e.name === 'PoolExhausted' && e.cidr === '10.96.0.0/30',
    );
    assert.deepEqual([...new Set(asked)], ['10.96.0.2']);
  });

  it('refuses a random source outside [0, 1)', () => {
    for (const r of [1, -0.1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => allocateAddress(pool, () => false, () => r), invalid, String(r));
  });

  it('allocates inside the CIDR, never a reserved address, and asks only about agent addresses (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 30 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        (prefix, anyAddress, r, takenShare) => {
          const size = 2 ** (32 - prefix);
          const network = anyAddress - (anyAddress % size);
          const cidr = parseCidr(`${toIp(network)}/${prefix}`);
          const isAgentAddress = (ip: string) => toInt(ip) >= network + 2 && toInt(ip) <= network + size - 2;
          const isTaken = (ip: string) => {
            assert.ok(isAgentAddress(ip), `asked about ${ip}`);
            return (toInt(ip) * 761) % 1000 < takenShare * 1000;
          };
          let ip: string;
          try {
            ip = allocateAddress(cidr, isTaken, () => r);
          } catch (error) {
            // Only a small pool can be entirely taken: the hash below leaves 10% of every 1,000 addresses free.
            assert.ok(error instanceof PoolExhausted && size < 1000, String(error));
            for (let n = network + 2; n <= network + size - 2; n++) assert.ok(isTaken(toIp(n)));
            return;
          }
          assert.ok(isAgentAddress(ip), `${ip} in ${cidr.text}`);
          assert.equal(isTaken(ip), false);
        },
      ),
      { numRuns: 500 },
    );
  });
});
