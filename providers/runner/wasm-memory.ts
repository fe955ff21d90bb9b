/**
 * Caps the linear memory a core WebAssembly module defines, by rewriting the maximum in its memory section.
 *
 * A worker's resourceLimits bound its JavaScript heap, not WebAssembly memory: without a declared maximum a guest
 * may grow its memory to 4 GiB. With the cap, `memory.grow` past it fails inside the guest (which traps or
 * reports), and nothing outside the worker is touched. Written by hand because the only alternative is a full
 * WebAssembly toolchain (binaryen) at runtime for a rewrite of one section.
 *
 * Binary format (WebAssembly core spec §5.5): after the 8-byte header, sections are (id: u8, size: u32 LEB128,
 * payload). The memory section (id 5) is a vector of limits: flag 0 → min; flag 1 → min, max (in 64 KiB pages).
 * Shared (2, 3) and 64-bit (4–7) memories are refused: no provider needs them.
 */
export const WASM_PAGE = 65536;

export class MemoryLimitError extends Error {}

function readU32(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  for (let i = at; i < bytes.length && i < at + 5; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new MemoryLimitError('malformed LEB128 integer');
}

function writeU32(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/**
 * The module with every memory it defines capped at `maxPages`; modules without a memory section are returned
 * unchanged. Throws MemoryLimitError when a memory's minimum already exceeds the cap, or the module is malformed.
 */
export function limitMemory(module: Uint8Array, maxPages: number): Uint8Array {
  if (module.length < 8 || module[0] !== 0 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) throw new MemoryLimitError('not a WebAssembly module');
  let at = 8;
  while (at < module.length) {
    const id = module[at]!;
    const size = readU32(module, at + 1);
    const end = size.next + size.value;
    if (end > module.length) throw new MemoryLimitError('a section runs past the end of the module');
    if (id === 5) {
      const rewritten = rewriteMemorySection(module.subarray(size.next, end), maxPages);
      const header = [5, ...writeU32(rewritten.length)];
      const out = new Uint8Array(at + header.length + rewritten.length + (module.length - end));
      out.set(module.subarray(0, at), 0);
      out.set(header, at);
      out.set(rewritten, at + header.length);
      out.set(module.subarray(end), at + header.length + rewritten.length);
      return out;
    }
    at = end;
  }
  return module;
}

function rewriteMemorySection(payload: Uint8Array, maxPages: number): Uint8Array {
  const count = readU32(payload, 0);
  const out: number[] = writeU32(count.value);
  let at = count.next;
  for (let i = 0; i < count.value; i++) {
    const flag = payload[at];
    if (flag !== 0 && flag !== 1) throw new MemoryLimitError('shared or 64-bit memories are not supported');
    const min = readU32(payload, at + 1);
    let max = maxPages;
    at = min.next;
    if (flag === 1) {
      const declared = readU32(payload, at);
      max = Math.min(declared.value, maxPages);
      at = declared.next;
    }
    if (min.value > maxPages) throw new MemoryLimitError(`the component needs ${min.value * 64} KiB of memory at start; the limit is ${maxPages * 64} KiB`);
    out.push(1, ...writeU32(min.value), ...writeU32(max));
  }
  if (at !== payload.length) throw new MemoryLimitError('malformed memory section');
  return Uint8Array.from(out);
}
