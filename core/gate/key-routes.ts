/**
 * Key rotation on the admin socket (its file mode is the authentication). `lattice keys rotate` comes here when a
 * gate runs, so the process that signs checkpoints and receipts switches keys at the moment the old one is retired,
 * in the same transaction that records `keys.rotated`, and deletes the retired private key file. The answer names
 * the retired and the new key and the seq of the retirement.
 */
import type { Route } from '../server/http.ts';
import type { RunningGate } from './gate.ts';

export interface RotatedKeys {
  readonly previousKeyId: string;
  readonly keyId: string;
  readonly publicKey: string;
  /** The seq of `keys.rotated`: the previous key signs nothing from here on. */
  readonly seq: number;
  readonly deletedKeyFiles: readonly string[];
}

export function keyRoutes(gate: RunningGate): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/admin/keys/rotate',
      on: ['admin'],
      handle: () => {
        const { previousKeyId, key, event, deletedKeyFiles } = gate.ledger.rotateKeys();
        const body: RotatedKeys = { previousKeyId, keyId: key.keyId, publicKey: key.publicKey, seq: event.seq, deletedKeyFiles };
        return Promise.resolve({ status: 200, body: { ...body } });
      },
    },
  ];
}
