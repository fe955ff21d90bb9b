/**
 * The host side of effects: performs each effect of a plan with the executor for its kind (http.ts, fs.ts).
 *
 * Fails closed: an effect of a kind it does not know is refused (SINK_DENIED), one whose action already timed out is
 * not started (EFFECT_FAILED), and every executor re-checks the manifest's sinks itself at the moment it acts.
 */
import { LatticeError } from '../../core/errors.ts';
import type { Effect, EffectContext, EffectHost, EffectResult } from '../../core/pipeline/effects.ts';
import { DEFAULT_MAX_READ_BYTES, readFile, writeFile } from './fs.ts';
import { DEFAULT_MAX_RESPONSE_BYTES, performHttp } from './http.ts';

export interface HostEffectsOptions {
  /** Bytes of an http response body read at most (default 1 MiB); the rest is dropped and `truncated` set. */
  readonly maxResponseBytes?: number;
  /** Largest file an fs.read returns (default 1 MiB); a larger one is refused. */
  readonly maxReadBytes?: number;
}

export class HostEffects implements EffectHost {
  readonly #maxResponseBytes: number;
  readonly #maxReadBytes: number;

  constructor(options: HostEffectsOptions = {}) {
    this.#maxResponseBytes = byteLimit(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, 'maxResponseBytes');
    this.#maxReadBytes = byteLimit(options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES, 'maxReadBytes');
  }

  async perform(effect: Effect, ctx: EffectContext): Promise<EffectResult> {
    if (ctx.signal.aborted) throw new LatticeError('EFFECT_FAILED', `the ${effect.kind} effect timed out before it started`);
    switch (effect.kind) {
      case 'http':
        return await performHttp(effect, ctx, { maxResponseBytes: this.#maxResponseBytes });
      case 'fs.read':
        return readFile(effect, ctx.manifest, this.#maxReadBytes);
      case 'fs.write':
        return writeFile(effect, ctx.manifest);
    }
    // Unreachable for well-typed callers; a plan is built from attacker-controlled params, so refuse, do not guess.
    throw new LatticeError('SINK_DENIED', `unknown effect kind ${JSON.stringify((effect as { kind: unknown }).kind)}`);
  }
}

function byteLimit(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new LatticeError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${value}`);
  return value;
}
