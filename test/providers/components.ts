/**
 * Test components built from WebAssembly text at test time (jco's wasm-tools, offline): a provider core module
 * with the canonical ABI written out by hand, embedded against lattice:provider (or another world) and made a
 * component. Each hostile provider is a few lines of `plan` body.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWat, providerComponent } from '../../scripts/jco-tools.ts';
import { ROOT } from '../helpers.ts';


export const PROVIDER_WIT = readFileSync(join(ROOT, 'providers/wit/provider.wit'), 'utf8');

/** A WAT data string holding `text` as UTF-16LE. */
function utf16(text: string): string {
  return [...text].map((c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}\\00`).join('');
}

/** `ok(text)` from a static string at offset `at`: the return area at 0 holds (0, at, length). */
export function returnsOk(text: string, at = 64): { data: string; body: string } {
  return {
    data: `(data (i32.const ${at}) "${utf16(text)}")`,
    body: `(i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (i32.const ${at})) (i32.store (i32.const 8) (i32.const ${text.length})) (i32.const 0)`,
  };
}

/**
 * A provider component whose plan runs `planBody` (it must leave the return area's address on the stack) and whose
 * finish returns `{}`. `imports` are extra core imports (for a world that declares them).
 */
export async function component(planBody: string, options: { data?: string; imports?: string; wit?: string; start?: string } = {}): Promise<Buffer> {
  const finish = returnsOk('{}', 2048);
  const wat = `(module
    ${options.imports ?? ''}
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.and (i32.add (i32.add (global.get $bump) (local.get 3)) (i32.const 7)) (i32.const -8)))
      (block $done (loop $grow
        (br_if $done (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
      (local.get $p))
    ${options.start === undefined ? '' : `(func $start ${options.start}) (start $start)`}
    (func (export "plan") (param i32 i32) (result i32) ${planBody})
    (func (export "finish") (param i32 i32 i32 i32) (result i32) ${finish.body})
    ${options.data ?? ''}
    ${finish.data}
  )`;
  return providerComponent(await parseWat(wat), options.wit ?? PROVIDER_WIT);
}

/** A provider that also imports WASI's filesystem (`wasi:filesystem/preopens@0.2.0`): lattice must refuse it. */
export function wasiComponent(): Promise<Buffer> {
  const wit = `package lattice:provider@0.1.0;
package wasi:filesystem@0.2.0 { interface preopens { get-directories: func(); } }
world provider {
  import wasi:filesystem/preopens@0.2.0;
  import log: func(message: string);
  export plan: func(request: string) -> result<string, string>;
  export finish: func(request: string, results: string) -> result<string, string>;
}`;
  const empty = returnsOk('{"effects":[]}');
  return component(empty.body, { data: empty.data, wit, imports: '(import "wasi:filesystem/preopens@0.2.0" "get-directories" (func))' });
}
