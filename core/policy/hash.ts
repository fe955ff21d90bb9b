/**
 * The policy set's identity: one canonical text for a set of policy files and its SHA-256, which receipts carry as
 * `policyHash`.
 *
 * Canonical text: the files sorted by name (UTF-16 code-unit order, so independent of locale and of the order the
 * caller lists them in), each contributing `"\n// file: " + name + "\n" + text`, concatenated; no trailing
 * separator. `hash = hex(sha256(utf8(canonical)))`. The text is hashed byte for byte as given (no newline or
 * whitespace normalisation), so any edit changes the hash.
 *
 * Refuses a set the canonical form could not represent unambiguously: an empty name, a name with a control
 * character (a newline would let one file's name forge another file's header), or two files with the same name.
 */
import { sha256Hex } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';

export interface PolicyFile {
  readonly name: string;
  readonly text: string;
}

function hasControlCharacter(name: string): boolean {
  for (let i = 0; i < name.length; i += 1) {
    const code = name.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** The files sorted by name; throws INVALID_ARGUMENT (until POLICY_INVALID exists) for names the hash cannot carry. */
export function sortPolicyFiles(files: readonly PolicyFile[]): PolicyFile[] {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 0; i < sorted.length; i += 1) {
    const file = sorted[i]!;
    if (file.name.length === 0) throw new LatticeError('POLICY_INVALID', 'a policy file has an empty name');
    if (hasControlCharacter(file.name)) {
      throw new LatticeError('POLICY_INVALID', `policy file name ${JSON.stringify(file.name)} contains a control character`);
    }
    if (!file.name.isWellFormed() || !file.text.isWellFormed()) {
      throw new LatticeError('POLICY_INVALID', `policy file ${JSON.stringify(file.name)} is not valid Unicode`);
    }
    if (i > 0 && sorted[i - 1]!.name === file.name) {
      throw new LatticeError('POLICY_INVALID', `two policy files are named ${JSON.stringify(file.name)}`);
    }
  }
  return sorted;
}

/** The canonical text described in the header. */
export function canonicalPolicyText(files: readonly PolicyFile[]): string {
  return sortPolicyFiles(files)
    .map((file) => `\n// file: ${file.name}\n${file.text}`)
    .join('');
}

/** SHA-256 (lowercase hex) of the canonical text: the `policyHash` of receipts. */
export function policyHash(files: readonly PolicyFile[]): string {
  return sha256Hex(canonicalPolicyText(files));
}
