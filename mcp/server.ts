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
 * - The list follows the gate: on `policy.changed` or `actions.changed` it is rebuilt and clients get
 *   `notifications/tools/list_changed`.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
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

export interface McpOptions {
  readonly version: string;
  /** How often a held call asks whether it was decided (default 1 s). */
  readonly pollIntervalMs?: number;
  /** How long a held call waits for a human before it returns an error (default 15 minutes). */
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

  async close(): Promise<void> {
    this.subscription?.close();
    await Promise.all([...this.servers].map((s) => s.close()));
    await this.lattice.close();
  }

  /** A Server for one session (stdio has one; Streamable HTTP one per client session). */
  server(): Server {
    if (this.mcp === undefined) throw new Error('start() the tools before serving them');
    const { Server, CallToolRequestSchema, ListToolsRequestSchema } = this.mcp;
    const server = new Server({ name: SERVER_NAME, version: this.options.version }, { capabilities: { tools: { listChanged: true } }, instructions: 'Actions run through the lattice gate: each call is authorized by policy, may wait for a human approval, and is recorded in a tamper-evident ledger. A denial says why; adapt the request or ask the user.' });
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [...this.tools.values()].map((t) => t.tool) }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const entry = this.tools.get(request.params.name);
      if (entry === undefined) return errorResult(`no tool ${request.params.name}: the gate does not offer it to this agent (it may have changed; list the tools again)`);
      const token = request.params._meta?.progressToken;
      let waited = 0;
      try {
        let result = await this.lattice.execute(entry.action.id, { params: request.params.arguments ?? {} });
        if (result.status === 'requested') {
          const held = result;
          result = await this.lattice.waitForDecision(held, {
            pollIntervalMs: this.options.pollIntervalMs ?? 1_000,
            timeoutMs: this.options.approvalTimeoutMs ?? 15 * 60_000,
            onWait: () => {
              if (token === undefined) return;
              waited++;
              void extra
                .sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: waited, message: `waiting for a human to approve ${entry.action.id} (approval ${held.approvalId}, plan sha256 ${held.planSha256})` } })
                .catch((error: unknown) => this.log(`progress not sent: ${String(error)}`));
            },
          });
        }
        return toolResult(entry.action.id, result);
      } catch (error) {
        if (error instanceof LatticeError) return errorResult(`${entry.action.id} could not be run: ${error.code}: ${error.message}`);
        throw error;
      }
    });
    this.servers.add(server);
    server.onclose = () => this.servers.delete(server);
    return server;
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
