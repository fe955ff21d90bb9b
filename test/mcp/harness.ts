/**
 * What the MCP tests share: a gate with a policy and an enrolled agent, the official SDK's clients (stdio, and
 * Streamable HTTP against a `lattice mcp --http` child), raw requests that set any header, and the operator's view
 * of held calls (approving one, or checking that one was withdrawn).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { CLI, latticeJson, tempDir } from '../helpers.ts';
import { asOperator, gate, type TestGate } from '../gate/harness.ts';

export const POLICY = `@id("echo")
permit (principal in Preset::"sandboxed", action == Action::"echo", resource) when { !(context.params has message && context.params.message == "forbidden") };
@id("writes-held")
@approval("required")
permit (principal in Preset::"sandboxed", action == Action::"fs.write", resource);`;

/** A gate with POLICY applied, and the credential file of an agent enrolled on it. */
export async function mcpGate(): Promise<{ g: TestGate; credential: string }> {
  const g = await gate();
  assert.equal((await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'mcp.cedar', text: POLICY }] })).status, 200);
  const credential = join(tempDir(), 'credential.json');
  const enrolled = latticeJson(['enroll', '--home', g.home, '--name', 'mcp-agent', '--type', 'claude-code', '--workspace', 'ws-mcp', '--out', credential, '--json']);
  assert.equal(enrolled.status, 0, enrolled.stderr);
  return { g, credential };
}

export function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') e[k] = v;
  return e;
}

export async function stdioClient(credential: string): Promise<Client> {
  const client = new Client({ name: 'lattice-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--credential', credential], env: env(), stderr: 'pipe' }));
  return client;
}

export const text = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

export async function approveWhenHeld(g: TestGate, path: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const held = ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string; planSha256: string }[]).find((a) => JSON.stringify(a).includes(path));
    if (held !== undefined) {
      const approved = await asOperator(g, 'POST', `/api/v1/approvals/${held.approvalId}/approve`, { planSha256: held.planSha256 });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      return;
    }
    if (Date.now() > deadline) throw new Error('nothing was held');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The held approval whose plan names `path`, once it appears. */
export async function heldFor(g: TestGate, path: string): Promise<{ approvalId: string; planSha256: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const held = ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string; planSha256: string }[]).find((a) => JSON.stringify(a).includes(path));
    if (held !== undefined) return held;
    if (Date.now() > deadline) throw new Error(`nothing was held for ${path}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * That a held call whose caller is gone was withdrawn: the approval's state becomes `withdrawn`, the ledger says
 * why, approving it is refused with APPROVAL_WITHDRAWN, and the file is never written.
 */
export async function assertWithdrawn(g: TestGate, held: { approvalId: string; planSha256: string }, path: string, why: RegExp): Promise<void> {
  const deadline = Date.now() + 20_000;
  let shown = await asOperator(g, 'GET', `/api/v1/approvals/${held.approvalId}`);
  while (shown.body['state'] === 'held' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    shown = await asOperator(g, 'GET', `/api/v1/approvals/${held.approvalId}`);
  }
  assert.equal(shown.body['state'], 'withdrawn', `the approval of ${path} was withdrawn`);
  const recorded = (await asOperator(g, 'GET', '/api/v1/audit?type=approval.withdrawn&limit=100')).body['events'] as { payload: { approvalId: string; reason?: string } }[];
  assert.match(recorded.find((e) => e.payload.approvalId === held.approvalId)?.payload.reason ?? '', why);
  const approved = await asOperator(g, 'POST', `/api/v1/approvals/${held.approvalId}/approve`, { planSha256: held.planSha256 });
  assert.equal(approved.status, 409);
  assert.equal(approved.body.error?.code, 'APPROVAL_WITHDRAWN');
  assert.equal(existsSync(join(g.home, 'workspace', path)), false, 'nothing was written');
}

/** Starts `lattice mcp --http` on `address` and resolves with its URL once it serves. */
export async function httpServer(credential: string, args: readonly string[]): Promise<{ child: ReturnType<typeof spawn>; url: string }> {
  const child = spawn(process.execPath, [CLI, 'mcp', '--credential', credential, ...args], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`lattice mcp exited ${code}: ${stderr}`)));
  });
  return { child, url };
}

/** A raw POST of an MCP initialize, with the headers given (fetch may not set Host; this can). */
export function rawInitialize(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: target.port, path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }));
  });
}

/** Any raw request to the MCP endpoint; the body text is read unless the answer is an event stream. */
export function raw(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      let text = '';
      if (String(res.headers['content-type']).includes('text/event-stream')) {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, text });
      }
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Connects the official SDK's Streamable HTTP client with these extra headers; resolves with it or the error. */
export async function httpClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'lattice-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

export const tokenBeside = (file: string) => `${file.replace(/\.json$/, '')}.mcp-token`;

/** Stops a `lattice mcp` child: SIGTERM, and SIGKILL if it still runs 10 s later (a failed test may leave it busy). */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exit;
  clearTimeout(timer);
}
