/**
 * The overlay address plan: strict IPv4 and CIDR parsing, and allocation of agent addresses from the overlay pool.
 *
 * Guards the pool: the network address, the broadcast address and the first host (the gate's own address) are
 * never handed to an agent, and every address handed out lies inside the pool. Refuses, with INVALID_ARGUMENT,
 * anything but canonical dotted quads (no leading zeros, so no octal readings; no hex or shortened forms), CIDRs with
 * host bits set, and pools outside /8–/30. An exhausted pool throws `PoolExhausted`. Uniqueness between concurrent
 * enrollments is not enforced here: the caller stores addresses in a UNIQUE column and retries on conflict.
 */
import { LatticeError } from '../errors.ts';

export const DEFAULT_OVERLAY_CIDR = '10.96.0.0/16';

/** A parsed IPv4 CIDR. `network` is the address as an unsigned 32-bit integer; host bits are always zero. */
export interface Cidr {
  /** Canonical text, `a.b.c.d/p`. */
  readonly text: string;
  readonly network: number;
  readonly prefix: number;
}

/** Thrown when every allocatable address of the pool is taken. */
export class PoolExhausted extends Error {
  readonly cidr: string;

  constructor(cidr: string) {
    super(`the overlay pool ${cidr} has no free address`);
    this.name = 'PoolExhausted';
    this.cidr = cidr;
  }
}

const OCTET = '(0|[1-9][0-9]{0,2})';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const CIDR = /^([0-9.]{7,15})\/(0|[1-9][0-9]?)$/;
const POOL_MIN_PREFIX = 8;
const POOL_MAX_PREFIX = 30;
/** Random probes before the linear scan; with a pool 90% free, eight misses in a row happen once in 10^8. */
const RANDOM_PROBES = 8;

/** Parses a canonical dotted quad into an unsigned 32-bit integer. */
export function parseIpv4(text: string, what = 'IPv4 address'): number {
  const match = typeof text === 'string' ? IPV4.exec(text) : null;
  if (match === null) throw invalid(`${what} ${JSON.stringify(text)} is not a dotted-quad IPv4 address like 10.96.0.2`);
  let value = 0;
  for (const octet of match.slice(1).map(Number)) {
    if (octet > 255) throw invalid(`${what} ${JSON.stringify(text)} has an octet above 255`);
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return `${Math.floor(value / 0x1000000) % 256}.${Math.floor(value / 0x10000) % 256}.${Math.floor(value / 0x100) % 256}.${value % 256}`;
}

/** Parses any IPv4 CIDR, /0 to /32, refusing one whose host bits are not zero. */
export function parseIpv4Cidr(text: string, what = 'CIDR'): Cidr {
  const match = typeof text === 'string' ? CIDR.exec(text) : null;
  if (match === null) throw invalid(`${what} ${JSON.stringify(text)} is not an IPv4 CIDR like 10.96.0.0/16`);
  const [, address = '', prefixText = ''] = match;
  const prefix = Number(prefixText);
  if (prefix > 32) throw invalid(`${what} ${JSON.stringify(text)} has a prefix above /32`);
  const value = parseIpv4(address, what);
  const size = 2 ** (32 - prefix);
  const network = value - (value % size);
  if (network !== value) {
    throw invalid(`${what} ${JSON.stringify(text)} has host bits set: the network is ${formatIpv4(network)}/${prefix}`);
  }
  return { text: `${address}/${prefix}`, network, prefix };
}

/** Parses the overlay pool: a CIDR from /8 to /30 with host bits zero. */
export function parseCidr(text: string): Cidr {
  const cidr = parseIpv4Cidr(text, 'overlay CIDR');
  checkPool(cidr);
  return cidr;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return address >= cidr.network && address < cidr.network + 2 ** (32 - cidr.prefix);
}

/** The gate's own overlay address: the first host of the pool. Never allocated to an agent. */
export function gateAddress(cidr: Cidr): string {
  checkPool(cidr);
  return formatIpv4(cidr.network + 1);
}

/**
 * Checks that `text` is an address an agent may hold in this pool (inside it; not the network, broadcast or gate
 * address) and returns it.
 */
export function checkAgentAddress(cidr: Cidr, text: string, what = 'overlay address'): string {
  const { first, count } = checkPool(cidr);
  const value = parseIpv4(text, what);
  if (value < first || value >= first + count) {
    throw invalid(`${what} ${text} is not an agent address of ${cidr.text} (network, broadcast and gate address are reserved)`);
  }
  return text;
}

/**
 * A free agent address: random probes first, so concurrent enrollments rarely pick the same one, then a linear scan
 * from the first random start, so a free address is found whenever one exists. `isTaken` is asked about agent
 * addresses only. Throws `PoolExhausted` when none is free.
 */
export function allocateAddress(cidr: Cidr, isTaken: (ip: string) => boolean, random: () => number = Math.random): string {
  const { first, count } = checkPool(cidr);
  const start = randomIndex(random, count);
  let index = start;
  for (let probe = 0; probe < RANDOM_PROBES; probe++) {
    const ip = formatIpv4(first + index);
    if (!isTaken(ip)) return ip;
    index = randomIndex(random, count);
  }
  for (let step = 0; step < count; step++) {
    const ip = formatIpv4(first + ((start + step) % count));
    if (!isTaken(ip)) return ip;
  }
  throw new PoolExhausted(cidr.text);
}

/** The agent range of a pool: `count` addresses from `first` (network + 2) up to broadcast − 1. */
function checkPool(cidr: Cidr): { first: number; count: number } {
  if (!Number.isInteger(cidr.prefix) || cidr.prefix < POOL_MIN_PREFIX || cidr.prefix > POOL_MAX_PREFIX) {
    throw invalid(`overlay CIDR ${cidr.text} must have a prefix from /${POOL_MIN_PREFIX} to /${POOL_MAX_PREFIX}`);
  }
  return { first: cidr.network + 2, count: 2 ** (32 - cidr.prefix) - 3 };
}

function randomIndex(random: () => number, count: number): number {
  const r = random();
  if (!(r >= 0 && r < 1)) throw invalid(`the random source returned ${String(r)}, not a number in [0, 1)`);
  return Math.floor(r * count);
}

function invalid(message: string): LatticeError {
  return new LatticeError('INVALID_ARGUMENT', message);
}
