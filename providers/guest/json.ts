// JSON for the built-in guests, written by hand: the AssemblyScript JSON library on the registry targets an old
// compiler and writes control characters unescaped (invalid JSON). This one is strict RFC 8259: what it accepts,
// JSON.parse accepts. Numbers keep their source text, so a value passes through a guest unchanged.

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

  isString(): bool {
    return this.kind == Kind.String;
  }
}

/** The member as a string, or null when it is absent or not a string. */
export function stringMember(obj: Json | null, key: string): string | null {
  if (obj === null) return null;
  const v = obj.get(key);
  if (v === null || v.kind != Kind.String) return null;
  return v.text;
}

const MAX_DEPTH = 128;

/** What the parser returns in scan mode, where it only checks the text and builds nothing. */
const SCANNED = new Json(Kind.Null);

class Parser {
  pos: i32 = 0;
  failed: bool = false;

  /** `scan`: check the grammar only (no nodes, no strings), for `isJson`. */
  constructor(
    public s: string,
    public scan: bool = false,
  ) {}

  fail(): Json {
    this.failed = true;
    return Json.nil();
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return;
      this.pos++;
    }
  }

  literal(word: string, value: Json): Json {
    if (this.s.substr(this.pos, word.length) != word) return this.fail();
    this.pos += word.length;
    return value;
  }

  value(depth: i32): Json {
    if (depth > MAX_DEPTH) return this.fail();
    this.ws();
    if (this.pos >= this.s.length) return this.fail();
    const c = this.s.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const text = this.string();
      return this.failed || this.scan ? SCANNED : Json.str(text);
    }
    if (c == 0x74) return this.literal("true", this.scan ? SCANNED : Json.bool(true));
    if (c == 0x66) return this.literal("false", this.scan ? SCANNED : Json.bool(false));
    if (c == 0x6e) return this.literal("null", this.scan ? SCANNED : Json.nil());
    return this.number();
  }

  object(depth: i32): Json {
    const obj = this.scan ? SCANNED : Json.object();
    this.pos++;
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return obj;
    }
    while (true) {
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x22) return this.fail();
      const key = this.string();
      if (this.failed) return obj;
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x3a) return this.fail();
      this.pos++;
      const v = this.value(depth + 1);
      if (this.failed) return obj;
      if (!this.scan) obj.set(key, v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x7d) return obj;
      if (c != 0x2c) return this.fail();
    }
  }

  array(depth: i32): Json {
    const arr = this.scan ? SCANNED : Json.array();
    this.pos++;
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return arr;
    }
    while (true) {
      const v = this.value(depth + 1);
      if (this.failed) return arr;
      if (!this.scan) arr.push(v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x5d) return arr;
      if (c != 0x2c) return this.fail();
    }
  }

  /**
   * At an opening quote; returns the unescaped string (sets `failed` on bad input). One pass checks and finds the
   * end; a string with escapes is then decoded into one buffer (never a string per escape: a megabyte of escaped
   * quotes would otherwise be a million small allocations).
   */
  string(): string {
    const s = this.s;
    const start = ++this.pos;
    let escaped = false;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) break;
      if (c < 0x20) return this.badString();
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      escaped = true;
      const e = this.pos + 1 < s.length ? s.charCodeAt(this.pos + 1) : -1;
      if (e == 0x75) {
        if (this.pos + 6 > s.length || hex4(s, this.pos + 2) < 0) return this.badString();
        this.pos += 6;
      } else if (unescape(e) >= 0) this.pos += 2;
      else return this.badString();
    }
    if (this.pos >= s.length) return this.badString();
    const end = this.pos++;
    if (this.scan) return "";
    if (!escaped) return s.substring(start, end);
    const buf = heap.alloc((<usize>(end - start)) << 1);
    let n: usize = 0;
    for (let i = start; i < end; n++) {
      let c = s.charCodeAt(i);
      if (c != 0x5c) i++;
      else if (s.charCodeAt(i + 1) == 0x75) {
        c = hex4(s, i + 2);
        i += 6;
      } else {
        c = unescape(s.charCodeAt(i + 1));
        i += 2;
      }
      store<u16>(buf + (n << 1), <u16>c);
    }
    const out = String.UTF16.decodeUnsafe(buf, n << 1);
    heap.free(buf);
    return out;
  }

  badString(): string {
    this.failed = true;
    return "";
  }

  /** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
  number(): Json {
    const s = this.s;
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) this.pos++;
    else if (!this.digits()) return this.fail();
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!this.digits()) return this.fail();
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!this.digits()) return this.fail();
    }
    return this.scan ? SCANNED : Json.num(s.substring(start, this.pos));
  }

  peek(): i32 {
    return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1;
  }

  digits(): bool {
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos > start;
  }
}

/** The four hex digits at `at` as a code unit, or -1. */
function hex4(s: string, at: i32): i32 {
  let code: i32 = 0;
  for (let k = 0; k < 4; k++) {
    const h = hexValue(s.charCodeAt(at + k));
    if (h < 0) return -1;
    code = (code << 4) | h;
  }
  return code;
}

/** The character a one-letter escape (`\n`, `\"`, …) stands for, or -1. */
function unescape(e: i32): i32 {
  if (e == 0x22 || e == 0x5c || e == 0x2f) return e;
  if (e == 0x62) return 0x08;
  if (e == 0x66) return 0x0c;
  if (e == 0x6e) return 0x0a;
  if (e == 0x72) return 0x0d;
  if (e == 0x74) return 0x09;
  return -1;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The value `text` holds, or null when it is not exactly one JSON value. */
export function parse(text: string): Json | null {
  const p = new Parser(text);
  const v = p.value(0);
  if (p.failed) return null;
  p.ws();
  return p.pos == text.length ? v : null;
}

/** Is `text` exactly one JSON value? Checks without building anything (a large body costs no memory). */
export function isJson(text: string): bool {
  const p = new Parser(text, true);
  p.value(0);
  if (p.failed) return false;
  p.ws();
  return p.pos == text.length;
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
