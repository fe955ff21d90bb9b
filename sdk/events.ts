/** Server-Sent Events from the gate's `/api/v1/events`, parsed by hand: the format is a few lines (WHATWG HTML §9.2) and the SDK should not pull in an EventSource polyfill for it. */

/** One event as the gate announces it: its ledger seq (the SSE id), its announced type and the ledger event. */
export interface LatticeEvent {
  readonly type: string;
  readonly seq: number;
  readonly ts: string;
  readonly ledgerType: string;
  readonly principal: string | null;
  readonly action: string | null;
  readonly decision: string | null;
  readonly payload: Record<string, unknown>;
}

/** Yields each `data:` event of a text/event-stream body; comments and retry hints are skipped. */
export async function* parseEvents(body: AsyncIterable<Buffer | string>): AsyncGenerator<LatticeEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data !== '') yield JSON.parse(data) as LatticeEvent;
    }
  }
}
