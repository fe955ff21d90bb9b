/**
 * Whether an IP address is public: the test that keeps an http sink with `allow_private = false` from reaching
 * loopback, the LAN, link-local metadata services or anything else that is not the public internet.
 *
 * Fails closed: anything that is not a plain IPv4 or IPv6 address (a zone id, a host name, garbage) is not public,
 * and an IPv6 address is public only inside global unicast 2000::/3 and outside every special-purpose range below.
 * IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the IPv4 address they
 * reach, so `::ffff:127.0.0.1` is loopback.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** IANA special-purpose IPv4 ranges (RFC 6890 and successors) that are not the public internet. */
const IPV4_NOT_PUBLIC: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network", including the unspecified 0.0.0.0
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including the broadcast 255.255.255.255
];

/** Special-purpose ranges inside global unicast 2000::/3 (everything outside 2000::/3 is refused anyway). */
const IPV6_NOT_PUBLIC: readonly (readonly [string, number])[] = [
  ['2001::', 23], // IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
];

/** The part of IPV4_NOT_PUBLIC that is this host and the networks around it (the rest is simply not routed). */
const IPV4_HOST_NETWORKS = IPV4_NOT_PUBLIC.filter(([net]) => !['192.0.2.0', '192.88.99.0', '198.18.0.0', '198.51.100.0', '203.0.113.0'].includes(net));

/**
 * The block lists, built on the first check rather than at load: building them parses every range, which costs a
 * cold process a few ms (`lattice sandbox` loads this module for its proxy and may never check an address).
 */
let lists: { ipv4NotPublic: BlockList; ipv4HostNetworks: BlockList; ipv6GlobalUnicast: BlockList; ipv6NotPublic: BlockList } | undefined;
const blockLists = () =>
  (lists ??= {
    ipv4NotPublic: blockList('ipv4', IPV4_NOT_PUBLIC),
    ipv4HostNetworks: blockList('ipv4', IPV4_HOST_NETWORKS),
    ipv6GlobalUnicast: blockList('ipv6', [['2000::', 3]]),
    ipv6NotPublic: blockList('ipv6', IPV6_NOT_PUBLIC),
  });

export function isPublicAddress(ip: string): boolean {
  const { ipv4NotPublic, ipv6GlobalUnicast, ipv6NotPublic } = blockLists();
  if (isIPv4(ip)) return !ipv4NotPublic.check(ip, 'ipv4');
  if (!isIPv6(ip) || ip.includes('%')) return false; // a zone id only makes sense for link-local addresses
  const embedded = embeddedIPv4(ipv6Groups(ip));
  if (embedded !== null) return !ipv4NotPublic.check(embedded, 'ipv4');
  return ipv6GlobalUnicast.check(ip, 'ipv6') && !ipv6NotPublic.check(ip, 'ipv6');
}

/**
 * Whether an address reaches this host or the networks around it: loopback, private, carrier-grade NAT,
 * link-local (metadata services), unspecified, multicast, reserved, and in IPv6 everything outside global unicast
 * (unique-local, link-local, site-local, multicast) or embedding such an IPv4 address. Narrower than
 * `!isPublicAddress`: documentation and benchmarking ranges pass, because some egress gateways (this project's
 * build machines among them) answer public names from them. Fails closed: what is not an address is refused.
 */
export function reachesHostNetworks(ip: string): boolean {
  const { ipv4HostNetworks, ipv6GlobalUnicast } = blockLists();
  if (isIPv4(ip)) return ipv4HostNetworks.check(ip, 'ipv4');
  if (!isIPv6(ip) || ip.includes('%')) return true;
  const embedded = embeddedIPv4(ipv6Groups(ip));
  if (embedded !== null) return ipv4HostNetworks.check(embedded, 'ipv4');
  return !ipv6GlobalUnicast.check(ip, 'ipv6');
}

/**
 * The IPv4 address an IPv6 address reaches when it embeds one: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96
 * (which also covers :: and ::1, judged as 0.0.0.0 and 0.0.0.1), NAT64 64:ff9b::/96 and 6to4 2002::/16.
 */
function embeddedIPv4(g: readonly number[]): string | null {
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && (g[5] === 0xffff || g[5] === 0)) return ipv4Of(g[6], g[7]);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return ipv4Of(g[6], g[7]);
  if (g[0] === 0x2002) return ipv4Of(g[1], g[2]);
  return null;
}

function ipv4Of(high = 0, low = 0): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/**
 * The eight 16-bit groups of an address `isIPv6` accepted. Hand-written because neither BlockList nor node:net
 * exposes an address's bits, and extracting an embedded IPv4 address needs them.
 */
function ipv6Groups(ip: string): number[] {
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const before = parse(head);
  const after = tail === undefined ? [] : parse(tail);
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
}

function blockList(type: 'ipv4' | 'ipv6', ranges: readonly (readonly [string, number])[]): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, type);
  return list;
}
