/**
 * An agent's wg-quick configuration and the AllowedIPs its policy preset routes through the tunnel.
 *
 * Every value lands in a file that wg-quick parses line by line (`Key = value`, `#` starts a comment), so each one
 * is validated against its exact grammar before rendering: keys are canonical base64 of 32 bytes, the address is an
 * agent address of the pool, the endpoint is `host:port` with a hostname, IPv4 or bracketed IPv6 host, and allowed
 * IPs are IPv4 CIDRs. Anything else (newlines, `=`, `#`, spaces, stray text) is refused with INVALID_ARGUMENT, never
 * escaped or passed through.
 */
import { isIPv6 } from 'node:net';
import { isWireGuardKey } from '../crypto/x25519.ts';
import { checkAgentAddress, gateAddress, parseIpv4, parseIpv4Cidr, type Cidr } from './overlay.ts';
import { LatticeError } from '../errors.ts';

export type PolicyPreset = 'sandboxed' | 'coordinator' | 'isolated';

export const POLICY_PRESETS: readonly PolicyPreset[] = ['sandboxed', 'coordinator', 'isolated'];

export interface WgQuickInput {
  /** The agent's private key, base64. */
  readonly privateKey: string;
  /** The agent's overlay address; rendered as a /32. */
  readonly address: string;
  /** The overlay pool the address belongs to. */
  readonly cidr: Cidr;
  readonly gatePublicKey: string;
  /** `host:port` of the gate's WireGuard listener. */
  readonly endpoint: string;
  /** IPv4 CIDRs routed to the gate, usually from `allowedIpsForPreset`. */
  readonly allowedIps: readonly string[];
  /** Seconds, 1–65535; 0 leaves keepalives off. Defaults to 25, which keeps NAT mappings open for the gate. */
  readonly persistentKeepalive?: number;
}

const DEFAULT_KEEPALIVE = 25;
const ENDPOINT = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253}):([1-9][0-9]{0,4})$/;
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function renderWgQuickConfig(input: WgQuickInput): string {
  if (!isWireGuardKey(input.privateKey)) {
    throw invalid('privateKey must be a WireGuard key: 44 characters of standard base64 encoding 32 bytes');
  }
  if (!isWireGuardKey(input.gatePublicKey)) {
    throw invalid(`gatePublicKey ${JSON.stringify(input.gatePublicKey)} is not a WireGuard key: 44 characters of standard base64 encoding 32 bytes`);
  }
  const address = checkAgentAddress(input.cidr, input.address, 'address');
  const endpoint = checkEndpoint(input.endpoint);
  const allowedIps = checkAllowedIps(input.allowedIps);
  const keepalive = checkKeepalive(input.persistentKeepalive ?? DEFAULT_KEEPALIVE);
  const lines = [
    '[Interface]',
    `PrivateKey = ${input.privateKey}`,
    `Address = ${address}/32`,
    '',
    '[Peer]',
    `PublicKey = ${input.gatePublicKey}`,
    `Endpoint = ${endpoint}`,
    `AllowedIPs = ${allowedIps.join(', ')}`,
  ];
  if (keepalive > 0) lines.push(`PersistentKeepalive = ${keepalive}`);
  return `${lines.join('\n')}\n`;
}

/**
 * What a preset routes through the tunnel. The firewall (nft.ts) is what enforces the preset; these routes only
 * keep an agent from sending traffic that the gate would drop anyway.
 * - sandboxed: the gate and the designated tool services;
 * - coordinator: the whole overlay (it talks to agents of its workspace; the firewall narrows it);
 * - isolated: the gate and its explicit allowlist only.
 */
export function allowedIpsForPreset(
  preset: PolicyPreset,
  cidr: Cidr,
  toolServices: readonly string[],
  allowlist: readonly string[],
): string[] {
  const gate = `${gateAddress(cidr)}/32`;
  switch (preset) {
    case 'sandboxed':
      return unique([gate, ...toolServices.map((text) => parseIpv4Cidr(text, 'tool service CIDR').text)]);
    case 'coordinator':
      return [cidr.text];
    case 'isolated':
      return unique([gate, ...allowlist.map((text) => parseIpv4Cidr(text, 'allowlist CIDR').text)]);
    default:
      throw invalid(`policy preset ${JSON.stringify(preset satisfies never)} is not one of ${POLICY_PRESETS.join(', ')}`);
  }
}

export function isPolicyPreset(value: unknown): value is PolicyPreset {
  return typeof value === 'string' && (POLICY_PRESETS as readonly string[]).includes(value);
}

function checkEndpoint(text: string): string {
  const match = typeof text === 'string' ? ENDPOINT.exec(text) : null;
  const [, host = '', port = ''] = match ?? [];
  const bad = (why: string) => invalid(`endpoint ${JSON.stringify(text)} ${why}`);
  if (match === null) throw bad('is not host:port (a hostname, an IPv4 address or a bracketed IPv6 address, and a port)');
  if (Number(port) > 65535) throw bad('has a port above 65535');
  if (host.startsWith('[')) {
    if (!isIPv6(host.slice(1, -1))) throw bad('has an invalid IPv6 address');
  } else if (/^[0-9.]+$/.test(host)) {
    parseIpv4(host, 'endpoint host');
  } else if (!host.split('.').every((label) => LABEL.test(label))) {
    throw bad('has an invalid hostname (labels of letters, digits and inner hyphens, separated by single dots)');
  }
  return text;
}

function checkAllowedIps(list: readonly string[]): string[] {
  const items: unknown = list;
  if (!Array.isArray(items) || items.length === 0) throw invalid('allowedIps must list at least one IPv4 CIDR');
  return unique(list.map((text) => parseIpv4Cidr(text, 'allowed IP').text));
}

function checkKeepalive(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) {
    throw invalid(`persistentKeepalive ${String(seconds)} must be a whole number of seconds from 0 (off) to 65535`);
  }
  return seconds;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function invalid(message: string): LatticeError {
  return new LatticeError('INVALID_ARGUMENT', message);
}
