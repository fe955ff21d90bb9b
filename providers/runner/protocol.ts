/** Messages between the provider pool (main thread) and a provider worker. */

/** A component as a worker loads it: jco's glue and the core modules, memory already capped. */
export interface WorkerComponent {
  /** The component's SHA-256 plus its memory cap: one component may be loaded with two caps. */
  readonly key: string;
  readonly glue: string;
  readonly modules: readonly (readonly [string, Uint8Array])[];
}

export type ToWorker =
  | { readonly type: 'load'; readonly component: WorkerComponent }
  | { readonly type: 'call'; readonly id: number; readonly key: string; readonly fn: 'plan' | 'finish'; readonly args: readonly string[]; readonly maxChars: number; readonly finishEmpty: boolean };

/**
 * `refused` is the provider's own `err`; `failed` is everything else (a trap, bad output, a load failure).
 * `finished` is the outcome of `finish(request, "[]")`, run in the same call when a `finishEmpty` plan has no
 * effects: such a plan's finish needs nothing from the host, and a second round trip would double its cost.
 */
export type CallOutcome = { readonly kind: 'ok'; readonly value: string; readonly finished?: CallOutcome } | { readonly kind: 'refused'; readonly message: string } | { readonly kind: 'failed'; readonly message: string };

/** `started`: the component is loaded and instantiated and the guest's function is about to run (its deadline starts). */
export type FromWorker =
  | { readonly type: 'started'; readonly id: number }
  | { readonly type: 'result'; readonly id: number; readonly outcome: CallOutcome }
  | { readonly type: 'log'; readonly key: string; readonly message: string };
