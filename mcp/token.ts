/**
 * The bearer secret of `lattice mcp --http`. The server acts with the agent's credential and loopback is open to
 * every local process, so every request must carry `Authorization: Bearer <secret>`. The secret is 32 random bytes
 * (base64url) in a file of its own, mode 0600, by default beside the credential (`cred.json` → `cred.mcp-token`);
 * the server creates it if it is missing, and `lattice mcp install --http` writes it into the client's
 * configuration. Requests are checked through core/crypto in constant time over SHA-256 of both sides, so neither
 * the secret's content nor its length shows in timing.
 *
 * Fails closed: a token file that group or others may access, that is not a regular file (a symlink is not
 * followed) or whose content is not such a secret is refused, never used, repaired or replaced. Messages never
 * include the secret.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { constantTimeEqual, randomToken, sha256Hex } from '../core/crypto/index.ts';
import { LatticeError, describeError, isLatticeError } from '../core/errors.ts';
import { writeFileExclusive } from '../core/fs-atomic.ts';

/** 32 bytes are 43 base64url characters; one trailing newline is written and accepted. */
const TOKEN_TEXT = /^([A-Za-z0-9_-]{43})\n?$/;
const MAX_FILE_BYTES = 64;
/** RFC 6750 §2.1: `Bearer` then one b64token. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/** Where the secret lives unless `--token-file` says otherwise: beside the credential file. */
export function defaultTokenFile(credential: string): string {
  return `${credential.replace(/\.json$/i, '')}.mcp-token`;
}

/** Reads the secret in `file`, creating the file (0600, exclusively) when it does not exist. */
export function loadOrCreateToken(file: string): { token: string; created: boolean } {
  const existing = readToken(file);
  if (existing !== undefined) return { token: existing, created: false };
  try {
    writeFileExclusive(file, `${randomToken(32)}\n`, 0o600);
  } catch (error) {
    // EEXIST: another process created it between the read and the write; its secret stands.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new LatticeError('IO_ERROR', `cannot create the MCP bearer secret ${file}: ${describeError(error)}; pass --token-file to put it elsewhere`, { cause: error });
    }
  }
  const created = readToken(file);
  if (created === undefined) throw new LatticeError('IO_ERROR', `the MCP bearer secret ${file} disappeared right after it was created`);
  return { token: created, created: true };
}

/** The secret in `file`, or undefined when there is no such file. */
export function readToken(file: string): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink is refused, not followed; O_NONBLOCK: a FIFO planted here cannot hang the open.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw invalid(`${file} is a symbolic link; the MCP bearer secret must be a regular file`);
    throw new LatticeError('IO_ERROR', `cannot read the MCP bearer secret ${file}: ${describeError(error)}`, { cause: error });
  }
  const raw = Buffer.alloc(MAX_FILE_BYTES + 1);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw invalid(`${file} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw invalid(`${file} is accessible to group or others (mode ${mode}); run \`chmod 600 ${file}\`, and if anyone else could read it, delete it so a new secret is made (then run \`lattice mcp install --http\` again)`);
    }
    const length = readSync(fd, raw, 0, raw.length, 0);
    const token = TOKEN_TEXT.exec(raw.subarray(0, length).toString('latin1'))?.[1];
    if (token === undefined) throw invalid(`${file} is not an MCP bearer secret (32 random bytes as base64url on one line); delete it and a new one is made`);
    return token;
  } catch (error) {
    if (isLatticeError(error)) throw error;
    throw new LatticeError('IO_ERROR', `cannot read the MCP bearer secret ${file}: ${describeError(error)}`, { cause: error });
  } finally {
    raw.fill(0);
    closeSync(fd);
  }
}

/** Whether an `Authorization` header (attacker-controlled) carries exactly `token`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = header === undefined ? undefined : BEARER.exec(header)?.[1];
  if (presented === undefined) return false;
  // Hashing both sides makes the comparison constant-time in the length as well as the content.
  return constantTimeEqual(sha256Hex(presented), sha256Hex(token));
}

function invalid(message: string): LatticeError {
  return new LatticeError('INVALID_ARGUMENT', message);
}
