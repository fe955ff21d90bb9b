/**
 * A pool of provider workers. A WebAssembly call cannot be interrupted on the thread that runs it, so providers
 * never run on the gate's thread: each call goes to an idle worker, and one that passes its deadline is
 * terminated and replaced while the other workers keep serving.
 *
 * Concurrency is bounded twice: by the number of workers (globally) and per key (an action's `concurrency`);
 * calls beyond either wait in one queue, which is itself bounded.
 */
import { Worker } from 'node:worker_threads';
import type { CallOutcome, FromWorker, ToWorker, WorkerComponent } from './protocol.ts';

export interface PoolOptions {
  /** The worker module (providers/runner/worker.ts, or its bundle). */
  readonly workerUrl: URL;
  readonly workers: number;
  /** V8 heap of each worker (JavaScript strings crossing in and out of the component live there). */
  readonly heapMb: number;
  /** Calls waiting for a worker beyond this are refused at once. */
  readonly maxQueue: number;
  /** Booting a worker, compiling and instantiating a component (default LOAD_DEADLINE_MS). */
  readonly loadDeadlineMs?: number;
  /** Where a component's `log` lines go. */
  readonly onLog?: (key: string, message: string) => void;
}

export interface CallRequest {
  readonly component: WorkerComponent;
  readonly fn: 'plan' | 'finish';
  readonly args: readonly string[];
  readonly deadlineMs: number;
  readonly maxChars: number;
  /** For a plan: also run finish with no results when the plan has no effects (protocol.ts). */
  readonly finishEmpty?: boolean;
  /** Calls sharing a limit key run at most `limit` at a time. */
  readonly limitKey: string;
  readonly limit: number;
}

interface Pending {
  readonly request: CallRequest;
  readonly resolve: (outcome: CallOutcome) => void;
}

interface Slot {
  worker: Worker;
  loaded: Set<string>;
  busy: { id: number; pending: Pending; timer: NodeJS.Timeout; started: boolean } | null;
}

/**
 * How long a worker may take to boot, compile and instantiate a component before its call starts: a separate
 * budget from the call's deadline, so a cold worker on a loaded machine does not fail a fast provider, while a
 * component whose instantiation never ends is still stopped.
 */
export const LOAD_DEADLINE_MS = 15_000; // `[providers] load_timeout`

export class ProviderPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly running = new Map<string, number>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: PoolOptions) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw new RangeError('a provider pool needs at least one worker');
  }

  get size(): number {
    return this.options.workers;
  }

  /** Runs one call; never rejects (every failure is an outcome). */
  call(request: CallRequest): Promise<CallOutcome> {
    if (this.closed) return Promise.resolve({ kind: 'failed', message: 'the provider pool is closed' });
    if (this.queue.length >= this.options.maxQueue) return Promise.resolve({ kind: 'failed', message: `${this.queue.length} provider calls are already waiting; try again shortly` });
    return new Promise((resolve) => {
      this.queue.push({ request, resolve });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.resolve({ kind: 'failed', message: 'the provider pool is closing' });
    await Promise.all(
      this.slots.splice(0).map((slot) => {
        if (slot.busy !== null) this.finish(slot, { kind: 'failed', message: 'the provider pool is closing' });
        return slot.worker.terminate();
      }),
    );
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const index = this.queue.findIndex((p) => (this.running.get(p.request.limitKey) ?? 0) < p.request.limit);
      if (index < 0) return;
      const pending = this.queue[index]!;
      const slot = this.idleSlot(pending.request.component.key);
      if (slot === null) return;
      this.queue.splice(index, 1);
      this.start(slot, pending);
    }
  }

  /** An idle worker, preferring one that has the component loaded; spawns up to the pool's size. */
  private idleSlot(key: string): Slot | null {
    let idle: Slot | null = null;
    for (const slot of this.slots) {
      if (slot.busy !== null) continue;
      if (slot.loaded.has(key)) return slot;
      idle ??= slot;
    }
    if (idle !== null) return idle;
    if (this.slots.length >= this.options.workers) return null;
    const slot = this.spawn();
    this.slots.push(slot);
    return slot;
  }

  private spawn(): Slot {
    const worker = new Worker(this.options.workerUrl, {
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb, maxYoungGenerationSizeMb: Math.min(16, this.options.heapMb), stackSizeMb: 4 },
    });
    const slot: Slot = { worker, loaded: new Set(), busy: null };
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'log') {
        this.options.onLog?.(message.key, message.message);
        return;
      }
      if (slot.busy?.id !== message.id) return;
      if (message.type === 'started') {
        const busy = slot.busy;
        if (busy.started) return; // the second half of a finishEmpty call runs within the same deadline
        busy.started = true;
        clearTimeout(busy.timer);
        const { deadlineMs } = busy.pending.request;
        busy.timer = setTimeout(() => this.replace(slot, `the provider ran past its ${deadlineMs} ms deadline and was stopped`), deadlineMs);
        return;
      }
      this.finish(slot, message.outcome);
      this.dispatch();
    });
    // A worker that dies (out of memory, a crash in the glue) fails its call and is replaced.
    worker.on('error', (error) => this.replace(slot, `the provider worker failed: ${error.message}`));
    worker.on('exit', (code) => this.replace(slot, `the provider worker exited (${code})`));
    worker.unref();
    return slot;
  }

  private start(slot: Slot, pending: Pending): void {
    const { request } = pending;
    const id = this.nextId++;
    if (!slot.loaded.has(request.component.key)) {
      slot.worker.postMessage({ type: 'load', component: request.component } satisfies ToWorker);
      slot.loaded.add(request.component.key);
    }
    const loadMs = this.options.loadDeadlineMs ?? LOAD_DEADLINE_MS;
    const timer = setTimeout(() => this.replace(slot, `the provider could not be loaded and instantiated within ${loadMs} ms and was stopped`), loadMs);
    slot.busy = { id, pending, timer, started: false };
    this.running.set(request.limitKey, (this.running.get(request.limitKey) ?? 0) + 1);
    slot.worker.postMessage({ type: 'call', id, key: request.component.key, fn: request.fn, args: request.args, maxChars: request.maxChars, finishEmpty: request.finishEmpty === true } satisfies ToWorker);
  }

  private finish(slot: Slot, outcome: CallOutcome): void {
    const busy = slot.busy;
    if (busy === null) return;
    slot.busy = null;
    clearTimeout(busy.timer);
    const key = busy.pending.request.limitKey;
    const n = (this.running.get(key) ?? 1) - 1;
    if (n === 0) this.running.delete(key);
    else this.running.set(key, n);
    busy.pending.resolve(outcome);
  }

  /** Fails the slot's call (if any), terminates its worker and puts a fresh one in its place. */
  private replace(slot: Slot, why: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return; // already replaced
    this.finish(slot, { kind: 'failed', message: why });
    this.slots.splice(index, 1);
    slot.worker.removeAllListeners('exit');
    void slot.worker.terminate();
    if (!this.closed) this.dispatch();
  }
}
