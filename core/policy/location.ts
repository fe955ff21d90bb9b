/**
 * Source positions for policy problems. Cedar reports spans as UTF-8 byte offsets; people read lines and columns
 * (1-based, columns counted in code points).
 */
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';

export interface Position {
  readonly line: number;
  readonly column: number;
}

function utf8Length(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/** The UTF-16 index in `text` of UTF-8 byte offset `byteOffset` (clamped to the end of the text). */
export function charIndexOfByte(text: string, byteOffset: number): number {
  let bytes = 0;
  let index = 0;
  for (const ch of text) {
    if (bytes >= byteOffset) break;
    bytes += utf8Length(ch.codePointAt(0) ?? 0);
    index += ch.length;
  }
  return index;
}

/** Line and column (1-based; columns in code points) of UTF-16 indexes in one text, by binary search over line starts. */
export class LineMap {
  private readonly starts: number[] = [0];

  constructor(private readonly text: string) {
    for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) this.starts.push(at + 1);
  }

  position(index: number): Position {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.starts[mid]! <= index) low = mid;
      else high = mid - 1;
    }
    const lineStart = this.starts[low]!;
    return { line: low + 1, column: [...this.text.slice(lineStart, index)].length + 1 };
  }
}

/** The first source offset (bytes) Cedar attached to an error, if any. */
export function errorByteOffset(error: DetailedError): number | null {
  return error.sourceLocations?.[0]?.start ?? null;
}

/** Cedar's message with its label and help, on one line. */
export function describeCedarError(error: DetailedError): string {
  const label = error.sourceLocations?.[0]?.label;
  let text = error.message;
  if (label !== null && label !== undefined && label.length > 0) text += ` (${label})`;
  if (error.help !== null && error.help.length > 0) text += `; ${error.help}`;
  return text;
}
