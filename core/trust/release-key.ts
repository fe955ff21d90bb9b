/**
 * The project's release key: it signs the built-in provider components (providers/components/<name>.wasm.sig) and is always a trusted publisher.
 * Only its public half is here; the private key is held by the release maintainers, never in this repository.
 */
import type { TrustedKey } from './signature.ts';

export const RELEASE_KEY: TrustedKey = {
  name: 'lattice release',
  keyId: 'b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw',
  publicKey: 'AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY',
};
