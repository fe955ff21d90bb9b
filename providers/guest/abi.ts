// The canonical ABI of the lattice:provider world, written by hand: AssemblyScript has no WIT bindings generator,
// and the world is two functions over strings. The component is embedded with `--string-encoding utf16`, so a
// string crosses as (pointer, length in code units) with AssemblyScript's own UTF-16 layout: no transcoding.
//
// Memory: the host allocates each argument with cabi_realloc; the guest copies it into a managed string and frees
// the block. A result is a raw block the host reads through the return area, freed by cabi_post_<export>.
//
// The guests use AssemblyScript's minimal runtime: no collection while a call runs (the incremental collector,
// re-marking a growing live set on every step, took over 15 s to pass on a 1 MiB JSON response), and a full
// collection in cabi_post_<export>, when the call is over and nothing on the stack holds a managed reference.

@external("$root", "log")
declare function hostLog(ptr: usize, len: usize): void;

/** result<string, string>: discriminant (0 ok, 1 err) at +0, pointer at +4, length at +8. */
const RETURN_AREA: usize = memory.data(12);

export function cabi_realloc(oldPtr: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (newSize == 0) return align; // a zero-length value needs an aligned, never-dereferenced pointer
  return oldPtr == 0 ? heap.alloc(newSize) : heap.realloc(oldPtr, newSize);
}

/** The argument as a managed string; the host's block is freed. */
export function take(ptr: usize, len: usize): string {
  const s = String.UTF16.decodeUnsafe(ptr, len << 1);
  if (len != 0) heap.free(ptr);
  return s;
}

function result(disc: u32, s: string): usize {
  const bytes = (<usize>s.length) << 1;
  const ptr: usize = bytes == 0 ? 0 : heap.alloc(bytes);
  if (bytes != 0) memory.copy(ptr, changetype<usize>(s), bytes);
  store<u32>(RETURN_AREA, disc);
  store<u32>(RETURN_AREA, <u32>ptr, 4);
  store<u32>(RETURN_AREA, <u32>s.length, 8);
  return RETURN_AREA;
}

export function ok(s: string): usize {
  return result(0, s);
}

export function err(s: string): usize {
  return result(1, s);
}

function release(area: usize): void {
  const ptr = <usize>load<u32>(area, 4);
  if (ptr != 0) heap.free(ptr);
  __collect(); // everything the call allocated is garbage now
}

export function cabi_post_plan(area: usize): void {
  release(area);
}

export function cabi_post_finish(area: usize): void {
  release(area);
}

export function log(message: string): void {
  hostLog(changetype<usize>(message), message.length);
}

/** `abort` (a failed assertion, an out-of-bounds access, out of memory) traps; the host reports the trap. */
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  unreachable();
}
