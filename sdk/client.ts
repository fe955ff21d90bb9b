/**
 * A minimal client for the gate over its unix socket (or an http(s) base URL): every request carries the lease
 * and a fresh DPoP proof. Errors from the gate come back as GateError with the gate's stable code.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Credential } from './credential.ts';
import { makeProof } from './dpop.ts';

export class GateError extends Error {
  override readonly name = 'GateError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class GateClient {
  constructor(private readonly credential: Credential) {}

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const c = this.credential;
    const url = `${c.baseUrl}${path}`;
    const proof = await makeProof({ alg: c.alg, privateJwk: c.privateJwk, publicJwk: c.publicJwk, method, url, accessToken: c.token });
    const headers: Record<string, string> = { authorization: `DPoP ${c.token}`, dpop: proof };
    const reply = await send(c, method, url, path, headers, body);
    if (reply.status >= 400) {
      const error = (reply.body as { error?: { code?: string; message?: string } }).error;
      throw new GateError(reply.status, error?.code ?? 'UNKNOWN', error?.message ?? `the gate answered ${reply.status}`);
    }
    return reply.body as T;
  }
}

function send(c: Credential, method: string, url: string, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  const target = new URL(url);
  const options = c.socketPath !== null ? { socketPath: c.socketPath, path, method, headers } : { hostname: target.hostname, port: target.port, path, method, headers };
  const request = target.protocol === 'https:' && c.socketPath === null ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (error) {
          reject(new GateError(res.statusCode ?? 0, 'BAD_RESPONSE', `the gate answered with something that is not JSON: ${String(error)}`));
        }
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) =>
      reject(new GateError(0, 'GATE_UNREACHABLE', error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? `no gate answers at ${c.socketPath ?? url}; is \`lattice up\` running?` : error.message)),
    );
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
