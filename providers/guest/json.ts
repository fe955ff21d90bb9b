// JSON values for the built-in guests, and writing them, by hand: the AssemblyScript JSON library on the registry
// targets an old compiler and writes control characters unescaped (invalid JSON). Parsing is in json-parse.ts.
// Numbers keep their source text, so a value passes through a guest unchanged.

export const enum Kind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
  /** JSON text already checked by `isJson`, written out verbatim: a large body passes through without a tree. */
  Raw,
}

/** Scalars share these (never pushed to): a node allocates child arrays only when it is an array or object. */
const NO_ITEMS: Json[] = [];
const NO_KEYS: string[] = [];
/** Past this many members an object indexes its keys, so building one stays linear. */
const INDEX_FROM = 16;

export class Json {
  kind: Kind;
  flag: bool = false;
  /** Number source text, or string value. */
  text: string = "";
  /** Array items, or object values (in key order). */
  items: Json[];
  keys: string[];
  index: Map<string, i32> | null = null;

  constructor(kind: Kind) {
    this.kind = kind;
    this.items = kind == Kind.Array || kind == Kind.Object ? [] : NO_ITEMS;
    this.keys = kind == Kind.Object ? [] : NO_KEYS;
  }

  static nil(): Json {
    return new Json(Kind.Null);
  }

  static bool(value: bool): Json {
    const j = new Json(Kind.Bool);
    j.flag = value;
    return j;
  }

  static str(value: string): Json {
    const j = new Json(Kind.String);
    j.text = value;
    return j;
  }

  static num(text: string): Json {
    const j = new Json(Kind.Number);
    j.text = text;
    return j;
  }

  static raw(text: string): Json {
    const j = new Json(Kind.Raw);
    j.text = text;
    return j;
  }

  static array(): Json {
    return new Json(Kind.Array);
  }

  static object(): Json {
    return new Json(Kind.Object);
  }

  /** The member `key` of an object, or null (also for a non-object). */
  get(key: string): Json | null {
    if (this.kind != Kind.Object) return null;
    const i = this.find(key);
    return i < 0 ? null : this.items[i];
  }

  /** Sets a member; a repeated key keeps its first position and takes the last value, as JSON.parse does. */
  set(key: string, value: Json): Json {
    const i = this.find(key);
    if (i >= 0) {
      this.items[i] = value;
      return this;
    }
    const index = this.index;
    if (index !== null) index.set(key, this.keys.length);
    else if (this.keys.length == INDEX_FROM) {
      const built = new Map<string, i32>();
      for (let k = 0; k < this.keys.length; k++) built.set(this.keys[k], k);
      built.set(key, this.keys.length);
      this.index = built;
    }
    this.keys.push(key);
    this.items.push(value);
    return this;
  }

  private find(key: string): i32 {
    const index = this.index;
    if (index !== null) return index.has(key) ? index.get(key) : -1;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return i;
    return -1;
  }

  push(value: Json): Json {
    this.items.push(value);
    return this;
  }
}

/** The member as a string, or null when it is absent or not a string. */
export function stringMember(obj: Json | null, key: string): string | null {
  if (obj === null) return null;
  const v = obj.get(key);
  if (v === null || v.kind != Kind.String) return null;
  return v.text;
}

/** A growing UTF-16 buffer: JSON text is written into one block, not assembled from many small strings. */
class Writer {
  ptr: usize = heap.alloc(512);
  cap: usize = 256;
  len: usize = 0;

  reserve(n: usize): void {
    if (this.len + n <= this.cap) return;
    let cap = this.cap << 1;
    if (cap < this.len + n) cap = this.len + n;
    this.ptr = heap.realloc(this.ptr, cap << 1);
    this.cap = cap;
  }

  /** Code units [from, to) of `s`. */
  range(s: string, from: i32, to: i32): void {
    const n = <usize>(to - from);
    this.reserve(n);
    memory.copy(this.ptr + (this.len << 1), changetype<usize>(s) + ((<usize>from) << 1), n << 1);
    this.len += n;
  }

  text(s: string): void {
    this.range(s, 0, s.length);
  }

  unit(c: i32): void {
    this.reserve(1);
    store<u16>(this.ptr + (this.len << 1), <u16>c);
    this.len++;
  }

  finish(): string {
    const s = String.UTF16.decodeUnsafe(this.ptr, this.len << 1);
    heap.free(this.ptr);
    return s;
  }
}

export function stringify(v: Json): string {
  const w = new Writer();
  write(v, w);
  return w.finish();
}

function write(v: Json, w: Writer): void {
  switch (v.kind) {
    case Kind.Null:
      w.text("null");
      break;
    case Kind.Bool:
      w.text(v.flag ? "true" : "false");
      break;
    case Kind.Number:
    case Kind.Raw:
      w.text(v.text);
      break;
    case Kind.String:
      quote(v.text, w);
      break;
    case Kind.Array:
      w.unit(0x5b);
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) w.unit(0x2c);
        write(v.items[i], w);
      }
      w.unit(0x5d);
      break;
    default:
      w.unit(0x7b);
      for (let i = 0; i < v.keys.length; i++) {
        if (i > 0) w.unit(0x2c);
        quote(v.keys[i], w);
        w.unit(0x3a);
        write(v.items[i], w);
      }
      w.unit(0x7d);
  }
}

const HEX = "0123456789abcdef";

/**
 * A JSON string literal, written as JSON.stringify writes it: control characters and unpaired surrogates escaped
 * (the host decodes UTF-16 with replacement of lone surrogates, and an escaped one survives that unchanged), a
 * surrogate pair left as the character it encodes.
 */
function quote(s: string, w: Writer): void {
  w.unit(0x22);
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c && (c < 0xd800 || c > 0xdfff)) continue;
    if (c <= 0xdbff && c >= 0xd800 && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a pair: one character, written as is
        continue;
      }
    }
    w.range(s, start, i);
    start = i + 1;
    w.unit(0x5c);
    if (c == 0x22 || c == 0x5c) w.unit(c);
    else if (c == 0x0a) w.unit(0x6e);
    else if (c == 0x0d) w.unit(0x72);
    else if (c == 0x09) w.unit(0x74);
    else if (c == 0x08) w.unit(0x62);
    else if (c == 0x0c) w.unit(0x66);
    else {
      w.unit(0x75);
      for (let shift = 12; shift >= 0; shift -= 4) w.unit(HEX.charCodeAt((c >> shift) & 15));
    }
  }
  w.range(s, start, s.length);
  w.unit(0x22);
}
