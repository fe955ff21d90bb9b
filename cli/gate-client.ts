/**
 * The operator's side of the admin socket: JSON requests over a unix socket with node:http. A gate that is not
 * running (no socket, or nothing answering) is reported as GATE_NOT_RUNNING with the command that starts one.
 * node:http loads with the first request, not with the module: `lattice sandbox` imports this to hand its
 * session the admin client, and sends nothing before its helper has the plan.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { LatticeError, type ErrorCode } from '../core/errors.ts';
import { resolveHome, runPaths } from '../core/home.ts';

export interface GateReply<T> {
  readonly status: number;
  readonly body: T;
}

export function callSocket<T>(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<GateReply<T>> {
  if (!existsSync(socketPath)) return Promise.reject(notRunning(socketPath));
  // getBuiltinModule, not import(): Node 24's ESM facade of node:http reads every export, including the WebSocket
  // getter that loads Node's internal undici (~30 ms of the single binary's start).
  const { request } = process.getBuiltinModule('node:http');
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        method,
        path,
        timeout: timeoutMs,
        // A connection of its own per call, made here and not by an agent: a pooled one the gate closes after its
        // keep-alive timeout can fail a call (EPIPE) that lands in that instant, a unix-socket connect costs
        // microseconds, and an agent would work out a TLS server name first (net.isIP's IPv6 pattern costs a
        // cold process ~5 ms to compile, a tenth of `lattice sandbox`'s own start).
        createConnection: () => connect(socketPath),
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as T });
          } catch (error) {
            reject(new LatticeError('GATE_UNREACHABLE', `the gate at ${socketPath} answered with something that is not JSON`, { cause: error }));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error: NodeJS.ErrnoException) => reject(unreachable(socketPath, error)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A request to the admin socket of the gate on `home`; a refusal becomes a LatticeError carrying the gate's code. */
export async function admin<T>(home: string | undefined, method: string, path: string, body?: unknown): Promise<T> {
  const reply = await callSocket<T & WireError>(runPaths(resolveHome(home)).adminSocket, method, path, body);
  if (reply.status >= 400) throw refusal(reply.status, reply.body);
  return reply.body;
}

/** The first answer of a request held open on the admin socket; `release` ends the request. */
export interface Held<T> {
  readonly value: T;
  release(): void;
}

/**
 * POST `body` to `path` on the admin socket of the gate on `home` and keep the request open: resolves with the data
 * of the gate's first event (JSON), rejects with the gate's error if it refused. The request ends on `release()`,
 * when the gate ends it, or when this process dies (the kernel closes the socket), which is what the gate watches
 * for (core/gate/sandbox-routes.ts).
 */
export function openHeld<T>(home: string | undefined, path: string, body: unknown, timeoutMs = 10_000): Promise<Held<T>> {
  const socketPath = runPaths(resolveHome(home)).adminSocket;
  if (!existsSync(socketPath)) return Promise.reject(notRunning(socketPath));
  const { request } = process.getBuiltinModule('node:http');
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), accept: 'text/event-stream' };
    const req = request({ method: 'POST', path, createConnection: () => connect(socketPath), headers }, (res) => {
      // Once answered, however the request ends (release, the gate ending it or going away) is not this side's error.
      res.on('error', () => undefined);
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const end = text.indexOf('\n\n');
        if (res.statusCode !== 200 || end === -1) return;
        clearTimeout(timer);
        const data = text.slice(0, end).split('\n').find((line) => line.startsWith('data: '));
        try {
          resolve({ value: JSON.parse(data?.slice(6) ?? '') as T, release: () => req.destroy() });
        } catch (error) {
          req.destroy();
          reject(new LatticeError('GATE_UNREACHABLE', `the gate at ${socketPath} answered ${path} with an event that is not JSON`, { cause: error }));
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode === 200) return reject(new LatticeError('GATE_UNREACHABLE', `the gate at ${socketPath} ended ${path} without answering`));
        if ((res.statusCode ?? 0) < 300) return reject(new LatticeError('GATE_UNREACHABLE', `the gate at ${socketPath} answered ${path} without holding it open: it runs another version of lattice; restart it (\`lattice down\`, then \`lattice up\`)`));
        let body: WireError | undefined;
        try {
          body = JSON.parse(text) as WireError;
        } catch {
          // not JSON: the status alone says what went wrong
        }
        reject(refusal(res.statusCode ?? 0, body));
      });
    });
    // The first answer must come in time; after it the request is held for as long as the session runs.
    const timer = setTimeout(() => req.destroy(new Error('timed out')), timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(unreachable(socketPath, error));
    });
    req.end(payload);
  });
}

/** The gate's error answer: `{error: {code, message}}`. */
type WireError = { error?: { code?: string; message?: string } };

/** A refusal from the gate as a LatticeError carrying the gate's code. */
function refusal(status: number, body: WireError | undefined): LatticeError {
  return new LatticeError((body?.error?.code ?? 'INTERNAL') as ErrorCode, body?.error?.message ?? `the gate answered ${status}`);
}

/** A connection that failed: no gate (the command that starts one), or one that cannot be reached. */
function unreachable(socketPath: string, error: NodeJS.ErrnoException): LatticeError {
  return error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? notRunning(socketPath) : new LatticeError('GATE_UNREACHABLE', `cannot reach the gate at ${socketPath}: ${error.message}`, { cause: error });
}

/** No gate answers on this socket: the error that says how to start one. */
export function notRunning(socketPath: string): LatticeError {
  return new LatticeError('GATE_NOT_RUNNING', `no gate is running (nothing answers on ${socketPath}); start one with \`lattice up\``);
}
