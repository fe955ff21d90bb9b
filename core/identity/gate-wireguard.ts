/**
 * The gate's own WireGuard key pair, created on first use and kept in `keys/wireguard.key` (0600) so that
 * configurations handed out before a restart stay valid.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateWireGuardKeyPair, isWireGuardKey, wireGuardPublicKey } from '../crypto/x25519.ts';
import { LatticeError } from '../errors.ts';
import { writeFileExclusive } from '../fs-atomic.ts';
import type { HomePaths } from '../home.ts';

export function gateWireGuardKey(paths: HomePaths): { publicKey: string } {
  const file = join(paths.keys, 'wireguard.key');
  if (!existsSync(file)) writeFileExclusive(file, `${generateWireGuardKeyPair().privateKey}\n`, 0o600);
  const privateKey = readFileSync(file, 'utf8').trim();
  if (!isWireGuardKey(privateKey)) throw new LatticeError('KEY_INVALID', `${file} is not a WireGuard private key`);
  return { publicKey: wireGuardPublicKey(privateKey) };
}
