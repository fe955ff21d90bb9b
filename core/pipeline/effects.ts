/**
 * The effects a plan may contain and what the host observed when it performed them. A provider only describes
 * effects; the gate checks each against the manifest's sinks (sinks.ts), policy sees them, and the host performs
 * them (an EffectHost, implemented outside core) with secrets injected only at that last step.
 *
 * Everything in a plan is derived from attacker-controlled params: the types here say what shape is allowed, the
 * sink checks say what is allowed to be touched.
 */
import type { ActionManifest } from '../actions/manifest.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpEffect {
  readonly kind: 'http';
  readonly method: HttpMethod;
  /** Absolute http(s) URL; its scheme, host, port and method must match one of the manifest's `[[sinks.http]]`. */
  readonly url: string;
  /** Request headers without secrets (lower-case names). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
  /** Names of the manifest's `[[secrets]]` the host injects into this request (shown to reviewers, never values). */
  readonly secrets: readonly string[];
}

export interface FsReadEffect {
  readonly kind: 'fs.read';
  /** Relative to the manifest's fs root, normalized, `/`-separated. */
  readonly path: string;
}

export interface FsWriteEffect {
  readonly kind: 'fs.write';
  readonly path: string;
  readonly content: string;
  /** UTF-8 byte length and SHA-256 of `content`, so a reviewer can compare without reading it all. */
  readonly bytes: number;
  readonly sha256: string;
}

export type Effect = HttpEffect | FsReadEffect | FsWriteEffect;

/** What the host saw. `body`/`content` go to the provider's finish; the rest is evidence (hashed into receipts). */
export type EffectResult =
  | {
      readonly kind: 'http';
      readonly status: number;
      /** Response headers the host passes on (content-type and the like), secrets redacted. */
      readonly headers: Readonly<Record<string, string>>;
      /** Bytes received (at most the host's response limit) and their SHA-256. */
      readonly bytes: number;
      readonly sha256: string;
      readonly truncated: boolean;
      /** The body as UTF-8 text with every injected secret value replaced by `[REDACTED]`. */
      readonly body: string;
    }
  | { readonly kind: 'fs.read'; readonly path: string; readonly bytes: number; readonly sha256: string; readonly content: string; readonly encoding: 'utf8' | 'base64' }
  | { readonly kind: 'fs.write'; readonly path: string; readonly bytes: number; readonly sha256: string; readonly created: boolean };

export interface EffectContext {
  readonly manifest: ActionManifest;
  /** The plaintext of a secret in the store, by store name; throws SECRET_NOT_FOUND. */
  readonly secret: (name: string) => string;
  /** Aborted when the action's timeout passes. */
  readonly signal: AbortSignal;
}

/**
 * Performs effects. Throws LatticeError `SINK_DENIED` when the effect turns out, at the moment it is performed, to
 * touch something the manifest does not allow (a name resolving to a private address, a symlink on the path) and
 * `EFFECT_FAILED` when it could not be performed; never performs a partial effect it does not report.
 */
export interface EffectHost {
  perform(effect: Effect, ctx: EffectContext): Promise<EffectResult>;
}

/** The evidence of a result: everything but the payload bytes themselves (they are covered by `sha256`). */
export function evidenceOf(result: EffectResult): Record<string, unknown> {
  switch (result.kind) {
    case 'http':
      return { kind: result.kind, status: result.status, bytes: result.bytes, sha256: result.sha256, truncated: result.truncated };
    case 'fs.read':
      return { kind: result.kind, path: result.path, bytes: result.bytes, sha256: result.sha256 };
    case 'fs.write':
      return { kind: result.kind, path: result.path, bytes: result.bytes, sha256: result.sha256, created: result.created };
  }
}
