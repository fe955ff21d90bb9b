/**
 * A provider worker: instantiates components with only lattice's host import (`log`) and runs one call at a time.
 * It has no other channel to the gate than its message port; the pool terminates it when a call passes its
 * deadline, and V8's resourceLimits and each component's capped memory bound what it can allocate.
 *
 * After a trap the instance is dropped (its heap may be mid-update) and the next call instantiates afresh.
 */
import { parentPort } from 'node:worker_threads';
import type { CallOutcome, FromWorker, ToWorker, WorkerComponent } from './protocol.ts';

// @types/node does not declare WebAssembly; this is the one constructor used here.
type CoreModule = object;
declare const WebAssembly: { Module: new (bytes: Uint8Array) => CoreModule };

interface Exports {
  plan(request: string): unknown;
  finish(request: string, results: string): unknown;
}

type Instantiate = (getCoreModule: (name: string) => CoreModule, imports: Record<string, unknown>) => Exports;

interface Loaded {
  readonly instantiate: Instantiate;
  readonly modules: ReadonlyMap<string, CoreModule>;
  instance: Exports | null;
}

/** Log lines a component may send per call; more are dropped (a log loop must not flood the gate). */
const LOG_LINES_PER_CALL = 16;
const LOG_LINE_CHARS = 1024;
/** A plan with no effects, as a provider may write it (the host parses it properly; this only spots the case). */
const EMPTY_PLAN = /^\s*\{\s*"effects"\s*:\s*\[\s*\]\s*\}\s*$/;

const port = parentPort;
if (port === null) throw new Error('the provider worker must run in a worker thread');
const loaded = new Map<string, Loaded>();
const loadErrors = new Map<string, string>();
let logBudget = 0;

function post(message: FromWorker): void {
  port!.postMessage(message);
}

async function load(c: WorkerComponent): Promise<void> {
  const modules = new Map(c.modules.map(([name, bytes]) => [name, new WebAssembly.Module(bytes)] as const));
  const glue = (await import(`data:text/javascript;base64,${Buffer.from(c.glue, 'utf8').toString('base64')}`)) as { instantiate: Instantiate };
  loaded.set(c.key, { instantiate: glue.instantiate, modules, instance: null });
}

function instance(key: string, entry: Loaded): Exports {
  if (entry.instance !== null) return entry.instance;
  const log = (message: unknown) => {
    if (logBudget <= 0) return;
    logBudget--;
    post({ type: 'log', key, message: String(message).slice(0, LOG_LINE_CHARS) });
  };
  entry.instance = entry.instantiate(
    (name) => {
      const m = entry.modules.get(name);
      if (m === undefined) throw new Error(`the glue asked for an unknown core module ${name}`);
      return m;
    },
    { log: { default: log } },
  );
  return entry.instance;
}

function call(id: number, key: string, fn: 'plan' | 'finish', args: readonly string[], maxChars: number): CallOutcome {
  const entry = loaded.get(key);
  if (entry === undefined) return { kind: 'failed', message: `the component could not be loaded: ${loadErrors.get(key) ?? 'not sent to this worker'}` };
  logBudget = LOG_LINES_PER_CALL;
  let value: unknown;
  try {
    const exports = instance(key, entry);
    post({ type: 'started', id }); // loading and instantiating are behind us: the call's own deadline starts now
    value = fn === 'plan' ? exports.plan(args[0] ?? '') : exports.finish(args[0] ?? '', args[1] ?? '');
  } catch (error) {
    // jco raises a result's `err` as a ComponentError carrying the guest's string; anything else is a trap.
    if (error instanceof Error && error.constructor.name === 'ComponentError' && typeof (error as { payload?: unknown }).payload === 'string') {
      return { kind: 'refused', message: ((error as unknown as { payload: string }).payload).slice(0, LOG_LINE_CHARS) };
    }
    entry.instance = null;
    return { kind: 'failed', message: `the provider trapped: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`.slice(0, LOG_LINE_CHARS) };
  }
  if (typeof value !== 'string') return { kind: 'failed', message: `${fn} returned ${typeof value}, not result<string, string>` };
  if (value.length > maxChars) return { kind: 'failed', message: `${fn} returned ${value.length} characters; the limit is ${maxChars}` };
  return { kind: 'ok', value };
}

// Loads are asynchronous (the glue is an ES module); messages are handled strictly in order.
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToWorker) => {
  queue = queue.then(async () => {
    if (message.type === 'load') {
      try {
        await load(message.component);
      } catch (error) {
        // The calls that follow fail and say why.
        loadErrors.set(message.component.key, (error instanceof Error ? error.message : String(error)).slice(0, LOG_LINE_CHARS));
      }
      return;
    }
    let outcome = call(message.id, message.key, message.fn, message.args, message.maxChars);
    if (message.finishEmpty && outcome.kind === 'ok' && EMPTY_PLAN.test(outcome.value)) {
      outcome = { ...outcome, finished: call(message.id, message.key, 'finish', [message.args[0] ?? '', '[]'], message.maxChars) };
    }
    post({ type: 'result', id: message.id, outcome });
  });
});
