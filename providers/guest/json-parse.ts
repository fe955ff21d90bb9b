// Parsing JSON for the built-in guests (json.ts has the values and writes them): strict RFC 8259, so what it accepts
// JSON.parse accepts; numbers keep their source text. `isJson` checks a text without building anything.
import { Json, Kind } from "./json";

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
