/**
 * lattice as an MCP server: the actions an agent may use, as tools, over the official MCP SDK. It runs as the
 * agent (its credential, through the lattice SDK), so the gate decides every call exactly as for any other
 * request of that agent; this server adds nothing an agent could not do itself, and offers no way to approve
 * or deny (there is no such tool, and an agent's credential could not use one).
 *
 * - Tools: one per usable action (`fs.read` → `fs_read`), `inputSchema` = the action's request schema,
 *   annotations from its risk and sinks (readOnlyHint for low risk, destructiveHint for high or critical,
 *   openWorldHint when it reaches the network).
 * - A held call sends progress notifications while it waits for a human (when the client asked for progress)
 *   and returns the output once approved; a denial is a tool error naming the reason, the policy and its
 *   conditions, so the model can adapt.
 * - A held call whose caller is gone is withdrawn at the gate (`approval.withdrawn`), so a reviewer approving it
 *   later runs nothing: when the client cancels it (`notifications/cancelled`, which the official clients send
 *   when a call is aborted), when its session or connection closes, when this server stops, and when no human
 *   decided within the call's wait (the model is told to call again, which asks again).
 * - The list follows the gate: on `policy.changed` or `actions.changed` it is rebuilt and clients get
 *   `notifications/tools/list_changed`.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolRequest, CallToolResult, ServerNotification, ServerRequest, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Lattice } from '../sdk/lattice.ts';
import type { ActionInfo, ActionResult, Subscription } from '../sdk/types.ts';
import { LatticeError } from '../sdk/errors.ts';

export const SERVER_NAME = 'lattice';

/**
 * The MCP SDK, loaded when an MCP server starts: it stays outside the CLI bundle (scripts/build.mjs), so every
 * other command starts without evaluating it.
 */
async function loadMcp() {
  const [server, types] = await Promise.all([import('@modelcontextprotocol/sdk/server/index.js'), import('@modelcontextprotocol/sdk/types.js')]);
  return { Server: server.Server, CallToolRequestSchema: types.CallToolRequestSchema, ListToolsRequestSchema: types.ListToolsRequestSchema };
}

/** MCP tool names: letters, digits, `_` and `-` (what every client accepts). */
export function toolName(actionId: string): string {
  return actionId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

function toolOf(action: ActionInfo): Tool {
  const schema = action.requestSchema;
  return {
    name: toolName(action.id),
    title: action.id,
    description: `${action.description} (lattice action ${action.id}, risk ${action.risk}${action.needsApproval ? '; every call waits for a human approval' : ''})`,
    inputSchema: { ...schema, type: 'object' },
    annotations: {
      title: action.id,
      readOnlyHint: action.risk === 'low',
      destructiveHint: action.risk === 'high' || action.risk === 'critical',
      openWorldHint: action.sinks.http.length > 0,
    },
  };
}

type CallExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;
type Held = Extract<ActionResult, { status: 'requested' }>;

export interface McpOptions {
  readonly version: string;
  /** How often a held call asks whether it was decided (default 1 s). */
  readonly pollIntervalMs?: number;
  /** How long a held call waits for a human before it is withdrawn and returns an error (default 15 minutes). */
  readonly approvalTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * Tools for one lattice client, shared by every MCP session of this process: the list is read from the gate
 * (and re-read when the gate announces a change), each session's Server answers from it.
 */
export class LatticeTools {
  private tools = new Map<string, { tool: Tool; action: ActionInfo }>();
  private readonly servers = new Set<Server>();
  /** Tool calls in progress (each settles after any withdrawal it makes), so close() waits for them. */
  private readonly calls = new Set<Promise<unknown>>();
  /** Set when close() begins, before any session closes, so their calls know why they were cancelled. */
  private stopping = false;
  private closed: Promise<void> | undefined;
  private subscription: Subscription | undefined;
  private mcp: Awaited<ReturnType<typeof loadMcp>> | undefined;

  constructor(
    private readonly lattice: Lattice,
    private readonly options: McpOptions,
  ) {}

  /** Reads the tool list and follows the gate's changes to it. */
  async start(): Promise<void> {
    this.mcp = await loadMcp();
    await this.refresh();
    this.subscription = await this.lattice.subscribe(
      () => {
        this.refresh()
          .then(() => Promise.all([...this.servers].map((s) => s.sendToolListChanged().catch((error: unknown) => this.log(`list_changed not sent: ${String(error)}`)))))
          .catch((error: unknown) => this.log(`could not refresh the tool list: ${String(error)}`));
      },
      { events: ['policy.changed', 'actions.changed'], onError: (error) => this.log(`event stream: ${String(error)}`) },
    );
  }

  /** Closes every session (their held calls withdraw), waits for the calls in progress, then the client. Once. */
  close(): Promise<void> {
    this.stopping = true;
    this.closed ??= (async () => {
      this.subscription?.close();
      await Promise.all([...this.servers].map((s) => s.close()));
      await Promise.allSettled([...this.calls]);
      await this.lattice.close();
    })();
    return this.closed;
  }

  /** A Server for one session (stdio has one; Streamable HTTP one per client session). */
  server(): Server {
    if (this.mcp === undefined) throw new Error('start() the tools before serving them');
    const { Server, CallToolRequestSchema, ListToolsRequestSchema } = this.mcp;
    const server = new Server({ name: SERVER_NAME, version: this.options.version }, { capabilities: { tools: { listChanged: true } }, instructions: 'Actions run through the lattice gate: each call is authorized by policy, may wait for a human approval, and is recorded in a tamper-evident ledger. A denial says why; adapt the request or ask the user.' });
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [...this.tools.values()].map((t) => t.tool) }));
    server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
      const call = this.call(request.params, extra);
      this.calls.add(call);
      const settle = () => void this.calls.delete(call);
      call.then(settle, settle);
      return call;
    });
    this.servers.add(server);
    server.onclose = () => this.servers.delete(server);
    return server;
  }

  private async call(params: CallToolRequest['params'], extra: CallExtra): Promise<CallToolResult> {
    const entry = this.tools.get(params.name);
    if (entry === undefined) return errorResult(`no tool ${params.name}: the gate does not offer it to this agent (it may have changed; list the tools again)`);
    const actionId = entry.action.id;
    try {
      const result = await this.lattice.execute(actionId, { params: params.arguments ?? {} });
      return result.status === 'requested' ? await this.awaitDecision(actionId, result, params._meta?.progressToken, extra) : toolResult(actionId, result);
    } catch (error) {
      if (error instanceof LatticeError) return errorResult(`${actionId} could not be run: ${error.code}: ${error.message}`);
      throw error;
    }
  }

  /**
   * Waits for a human to decide a held call, with progress when the client asked for it. A call whose caller is
   * gone (cancelled, disconnected, or the wait is over) withdraws the request, so approving it later runs nothing.
   */
  private async awaitDecision(actionId: string, held: Held, token: string | number | undefined, extra: CallExtra): Promise<CallToolResult> {
    const timeoutMs = this.options.approvalTimeoutMs ?? 15 * 60_000;
    const whyAborted = this.abortReason(extra.signal);
    let waited = 0;
    const waiting = {
      pollIntervalMs: this.options.pollIntervalMs ?? 1_000,
      timeoutMs,
      signal: extra.signal,
      onWait: () => {
        if (token === undefined) return;
        waited++;
        void extra
          .sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: waited, message: `waiting for a human to approve ${actionId} (approval ${held.approvalId}, plan sha256 ${held.planSha256})` } })
          .catch((error: unknown) => this.log(`progress not sent: ${String(error)}`));
      },
    };
    try {
      const result = await this.lattice.waitForDecision(held, waiting);
      if (result.status !== 'requested') return toolResult(actionId, result);
      const seconds = Math.round(timeoutMs / 1000);
      const ended = await this.withdraw(held, `no human decided within the ${seconds} s the MCP tool call waited`);
      if (ended === 'approved') return toolResult(actionId, await this.lattice.waitForDecision(held, waiting)); // approved as the wait ended: it runs
      if (ended === null) return errorResult(`${actionId} waited ${seconds} s and no human decided; it could not be withdrawn, so it stays held (approval ${held.approvalId}) and runs if a reviewer approves it`, { approvalId: held.approvalId });
      if (ended.status !== 'withdrawn') return toolResult(actionId, ended); // decided just before the withdrawal
      return errorResult(`${actionId} waited ${seconds} s and no human decided, so the request was withdrawn (approval ${held.approvalId}); ask the user to review it, then call again: the new call waits for approval again`, { approvalId: held.approvalId });
    } catch (error) {
      if (!extra.signal.aborted) throw error;
      const why = whyAborted();
      await this.withdraw(held, why);
      return errorResult(`${actionId} was withdrawn: ${why}`); // not sent: the SDK answers nothing to a cancelled request
    }
  }

  /** Why a call's signal aborted, as it stood when it did: this server stopping, or the client (with its reason). */
  private abortReason(signal: AbortSignal): () => string {
    const explain = () => {
      const reason: unknown = signal.reason;
      if (this.stopping) return 'the MCP server stopped';
      return typeof reason === 'string' ? `the MCP client cancelled the call: ${reason}` : 'the MCP client cancelled the call or went away';
    };
    let why: string | undefined;
    signal.addEventListener('abort', () => (why = explain()), { once: true });
    return () => why ?? explain();
  }

  /**
   * Withdraws a held request: its outcome (`withdrawn`, or how it ended first), `approved` when a reviewer approved
   * it first (it runs), or null when the gate could not be told (it stays held until decided or expired).
   */
  private async withdraw(held: Held, reason: string): Promise<ActionResult | 'approved' | null> {
    try {
      const ended = await this.lattice.withdraw(held.approvalId, { reason: oneLine(reason) });
      this.log(ended.status === 'withdrawn' ? `withdrew approval ${held.approvalId}: ${oneLine(reason)}` : `approval ${held.approvalId} was already ${ended.status}`);
      return ended;
    } catch (error) {
      if (error instanceof LatticeError && error.code === 'APPROVAL_NOT_PENDING') {
        this.log(`approval ${held.approvalId} was approved before it could be withdrawn; it runs`);
        return 'approved';
      }
      this.log(`could not withdraw approval ${held.approvalId} (${String(error)}); it stays held until a reviewer decides or it expires`);
      return null;
    }
  }

  private async refresh(): Promise<void> {
    const next = new Map<string, { tool: Tool; action: ActionInfo }>();
    for (const action of await this.lattice.actions()) {
      if (!action.usable) continue;
      const name = toolName(action.id);
      if (next.has(name)) {
        this.log(`actions ${next.get(name)?.action.id ?? ''} and ${action.id} map to the same tool name ${name}; offering only the first`);
        continue;
      }
      next.set(name, { tool: toolOf(action), action });
    }
    this.tools = next;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

function toolResult(actionId: string, result: ActionResult): CallToolResult {
  switch (result.status) {
    case 'executed':
      return {
        content: [{ type: 'text', text: JSON.stringify(result.output, null, 2) }],
        ...(isObject(result.output) && { structuredContent: result.output }),
        _meta: { 'lattice/auditEventId': result.auditEventId, 'lattice/receiptId': result.receiptId },
      };
    case 'denied':
      return errorResult(
        `${actionId} was denied (${result.denialReason}${result.policy === null ? '' : ` by policy ${result.policy}`}): ${result.message}` +
          (result.conditions.length === 0 ? '' : `\nconditions:\n${result.conditions.map((c) => `- ${JSON.stringify(c)}`).join('\n')}`),
        { denialReason: result.denialReason, policy: result.policy, conditions: result.conditions },
      );
    case 'requested':
      return errorResult(`${actionId} is still waiting for a human (approval ${result.approvalId}); ask the user to review it, then call again with the same arguments`, { approvalId: result.approvalId });
    case 'expired':
    case 'cancelled':
    case 'withdrawn':
      return errorResult(`${actionId} was not approved: ${result.status}: ${result.message}`, { approvalId: result.approvalId });
    case 'failed':
      return errorResult(`${actionId} failed: ${result.error.code}: ${result.error.message}`);
    case 'interrupted':
      return errorResult(`${actionId} was interrupted: ${result.message}`);
  }
}

function errorResult(text: string, details?: Record<string, unknown>): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }], ...(details !== undefined && { structuredContent: details }) };
}

/** A reason the gate records: one line of at most 512 characters, well-formed, without control characters. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- the point is to replace control characters
  return text.toWellFormed().replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').slice(0, 500).trim() || 'cancelled';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
