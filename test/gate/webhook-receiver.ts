/**
 * A webhook receiver for the gate tests: node:http on 127.0.0.1 that checks every delivery's Standard Webhooks
 * signature on its own (WebCrypto HMAC, not lattice's code) and answers as the test says. It records every
 * delivery; `accepted()` is what a real receiver would have processed: verified and answered 2xx.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  readonly path: string;
  readonly id: string;
  readonly timestamp: number;
  readonly signature: string;
  readonly body: string;
  readonly json: { type?: string; data?: { seq: number; hash: string; ledgerType: string } } & Record<string, unknown>;
  readonly verified: boolean;
  /** When it arrived (ms since the epoch). */
  readonly at: number;
  status: number;
}

/**
 * What to answer: a status and body, decided per delivery (a promise holds the answer back); `attempt` counts
 * deliveries with this webhook-id.
 */
export type Answerer = (delivery: Delivery, attempt: number) => Answer | Promise<Answer>;
type Answer = { status: number; body?: string };

/**
 * The receiver's own check, as the Standard Webhooks specification describes it: the key is the base64 after
 * `whsec_`; one of the space-separated `v1,<base64>` entries must be the HMAC-SHA256 of `id.timestamp.body`; the
 * timestamp must be within five minutes.
 */
export async function verifySignature(secret: string, id: string, timestamp: string, body: string, header: string): Promise<boolean> {
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = await crypto.subtle.importKey('raw', Buffer.from(secret.replace(/^whsec_/, ''), 'base64'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const content = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const entry of header.split(' ')) {
    const [version, signature] = entry.split(',');
    if (version === 'v1' && signature !== undefined && (await crypto.subtle.verify('HMAC', key, Buffer.from(signature, 'base64'), content))) return true;
  }
  return false;
}

export class Receiver {
  readonly deliveries: Delivery[] = [];
  answer: Answerer = () => ({ status: 200 });

  private constructor(
    private readonly server: Server,
    readonly secret: string,
  ) {}

  /** Listens on 127.0.0.1 (a free port, or `port` to come back where a stopped receiver was). */
  static async start(secret: string, port = 0): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, secret);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void receiver.receive(req.url ?? '', req.headers, Buffer.concat(chunks).toString('utf8')).then(({ status, body }) => {
          res.writeHead(status, { 'content-type': 'text/plain' }).end(body ?? '');
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Verified deliveries answered 2xx, optionally on one path: what a receiver acted on. */
  accepted(path?: string): Delivery[] {
    return this.deliveries.filter((d) => d.verified && d.status >= 200 && d.status < 300 && (path === undefined || d.path === path));
  }

  async until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; deliveries: ${JSON.stringify(this.deliveries.map((d) => [d.path, d.id, d.status, d.json.type]))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async receive(path: string, headers: IncomingHttpHeaders, body: string): Promise<Answer> {
    const id = String(headers['webhook-id'] ?? '');
    const timestamp = String(headers['webhook-timestamp'] ?? '');
    const signature = String(headers['webhook-signature'] ?? '');
    const verified = await verifySignature(this.secret, id, timestamp, body, signature);
    const delivery: Delivery = { path, id, timestamp: Number(timestamp), signature, body, json: JSON.parse(body) as Delivery['json'], verified, at: Date.now(), status: 0 };
    this.deliveries.push(delivery);
    const answer = verified ? await this.answer(delivery, this.deliveries.filter((d) => d.id === id).length) : { status: 401, body: 'bad signature' };
    delivery.status = answer.status;
    return answer;
  }
}
