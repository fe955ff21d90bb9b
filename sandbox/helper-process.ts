/**
 * The sandbox helper as a child process (sandbox/helper/lattice-sandbox.c): spawned with three pipes, the plan on
 * fd 3, its status lines on fd 4 and the go on fd 5. The helper decides nothing; this side only feeds and watches it.
 * Fail closed: a helper the session gives up on never runs the command (killed before its plan, EOF for its go after).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { serializePlan, type SandboxPlan } from './plan.ts';

/** The helper's status lines (fd 4): `landlock N`, `ready`, or `error …`; ends when the agent's command execs. */
export class HelperStatus {
  private text = '';
  private done = false;
  private waiters: (() => void)[] = [];
  readonly ended: Promise<void>;

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (d: Buffer) => {
      this.text += d.toString('utf8');
      this.wake();
    });
    this.ended = new Promise((resolve) =>
      stream.on('end', () => {
        this.done = true;
        this.wake();
        resolve();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private lines(): string[] {
    return this.text.slice(0, this.text.lastIndexOf('\n') + 1).split('\n');
  }

  /** The helper's error, if it reported one. */
  error(): string | undefined {
    return this.lines().find((l) => l.startsWith('error '))?.slice(6);
  }

  /** The first line that is `word` or starts with `word `; undefined when an error or the end comes first. */
  async line(word: string): Promise<string | undefined> {
    for (;;) {
      if (this.error() !== undefined) return undefined;
      const hit = this.lines().find((l) => l === word || l.startsWith(`${word} `));
      if (hit !== undefined) return hit;
      if (this.done) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

/**
 * The helper, started before anything else of the session: it reports the kernel's Landlock ABI at once and then
 * waits for its plan (fd 3), so its start costs the session nothing while the plan is made; the sandbox is then
 * built while the session enrolls its identity and starts the proxies.
 */
export class Helper {
  readonly child: ChildProcess;
  readonly status: HelperStatus;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly planPipe: NodeJS.WritableStream;
  private readonly goPipe: NodeJS.WritableStream;
  private planned = false;
  private decided = false;

  constructor(path: string) {
    this.child = spawn(path, [], { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe', 'pipe'], env: {} });
    const pipes = this.child.stdio as unknown as readonly (NodeJS.WritableStream & NodeJS.ReadableStream)[];
    const [planPipe, status4, go] = [pipes[3], pipes[4], pipes[5]];
    if (planPipe === undefined || status4 === undefined || go === undefined) throw new Error('the helper was spawned without its pipes');
    // The helper may exit before reading; its exit status and status lines say why.
    planPipe.on('error', () => undefined);
    go.on('error', () => undefined);
    [this.planPipe, this.goPipe] = [planPipe, go];
    this.status = new HelperStatus(status4);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  sendPlan(plan: SandboxPlan): void {
    this.planned = true;
    this.planPipe.end(serializePlan(plan));
  }

  /** The go (`run`) or EOF instead, after which the command never runs and the helper exits 125. Given once. */
  decide(run: boolean): void {
    this.decided = true;
    if (run) this.goPipe.end('g');
    else this.goPipe.end();
  }

  /**
   * Ends a helper the session gave up on before its go: one without a plan is killed (nothing is built yet), one
   * with a plan gets EOF for its go. Either way nothing runs, and this returns once it has exited.
   */
  async abandon(): Promise<void> {
    if (this.decided) return;
    if (this.planned) this.decide(false);
    else this.child.kill('SIGKILL');
    await this.exited;
  }
}
