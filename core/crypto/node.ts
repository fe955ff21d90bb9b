/**
 * node:crypto, loaded on its first use. Node compiles the module and its internals (~5 ms in a cold process) when
 * it is imported, so a static import made every command that merely imports core/crypto pay for it, including
 * `lattice sandbox`, which needs no primitive before its helper has the plan. The three modules of core/crypto
 * reach node:crypto only through this function.
 */
import type * as NodeCryptoModule from 'node:crypto';

type NodeCrypto = typeof NodeCryptoModule;

let loaded: NodeCrypto | undefined;

export function nodeCrypto(): NodeCrypto {
  loaded ??= process.getBuiltinModule('node:crypto');
  return loaded;
}
