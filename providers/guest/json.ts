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
}

export class Json {
  kind: Kind;
  flag: bool = false;
  /** Number source text, or string value. */
  text: string = "";
  /** Array items, or object values (in key order). */
  items: Json[] = [];
  keys: string[] = [];

  constructor(kind: Kind) {
    this.kind = kind;
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

  static array(): Json {
    return new Json(Kind.Array);
  }

  static object(): Json {
    return new Json(Kind.Object);
  }

  /** The member `key` of an object, or null (also for a non-object). */
  get(key: string): Json | null {
    if (this.kind != Kind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  /** Sets a member; a repeated key keeps its first position and takes the last value, as JSON.parse does. */
  set(key: string, value: Json): Json {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.items[i] = value;
        return this;
      }
    }
    this.keys.push(key);
    this.items.push(value);
    return this;
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

class Parser {
  pos: i32 = 0;
  failed: bool = false;

  constructor(public s: string) {}

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
      return this.failed ? Json.nil() : Json.str(text);
    }
    if (c == 0x74) return this.literal("true", Json.bool(true));
    if (c == 0x66) return this.literal("false", Json.bool(false));
    if (c == 0x6e) return this.literal("null", Json.nil());
    return this.number();
  }

  object(depth: i32): Json {
    const obj = Json.object();
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
      obj.set(key, v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x7d) return obj;
      if (c != 0x2c) return this.fail();
    }
  }

  array(depth: i32): Json {
    const arr = Json.array();
    this.pos++;
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return arr;
    }
    while (true) {
      const v = this.value(depth + 1);
      if (this.failed) return arr;
      arr.push(v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x5d) return arr;
      if (c != 0x2c) return this.fail();
    }
  }

  /** At an opening quote; returns the unescaped string (sets `failed` on bad input). */
  string(): string {
    const s = this.s;
    let start = ++this.pos;
    let parts: string[] = [];
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) {
        const tail = s.substring(start, this.pos++);
        if (parts.length == 0) return tail;
        parts.push(tail);
        return parts.join("");
      }
      if (c < 0x20) break;
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      parts.push(s.substring(start, this.pos));
      if (this.pos + 1 >= s.length) break;
      const e = s.charCodeAt(this.pos + 1);
      this.pos += 2;
      if (e == 0x22) parts.push('"');
      else if (e == 0x5c) parts.push("\\");
      else if (e == 0x2f) parts.push("/");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x6e) parts.push("\n");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x75) {
        if (this.pos + 4 > s.length) break;
        let code: i32 = 0;
        for (let k = 0; k < 4; k++) {
          const h = hexValue(s.charCodeAt(this.pos + k));
          if (h < 0) {
            this.failed = true;
            return "";
          }
          code = (code << 4) | h;
        }
        this.pos += 4;
        parts.push(String.fromCharCode(code));
      } else break;
      start = this.pos;
    }
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
    return Json.num(s.substring(start, this.pos));
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

export function stringify(v: Json): string {
  const out: string[] = [];
  write(v, out);
  return out.join("");
}

function write(v: Json, out: string[]): void {
  switch (v.kind) {
    case Kind.Null:
      out.push("null");
      break;
    case Kind.Bool:
      out.push(v.flag ? "true" : "false");
      break;
    case Kind.Number:
      out.push(v.text);
      break;
    case Kind.String:
      quote(v.text, out);
      break;
    case Kind.Array:
      out.push("[");
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) out.push(",");
        write(v.items[i], out);
      }
      out.push("]");
      break;
    default:
      out.push("{");
      for (let i = 0; i < v.keys.length; i++) {
        if (i > 0) out.push(",");
        quote(v.keys[i], out);
        out.push(":");
        write(v.items[i], out);
      }
      out.push("}");
  }
}

const HEX = "0123456789abcdef";

/**
 * A JSON string literal, written as JSON.stringify writes it: control characters and unpaired surrogates escaped
 * (the host decodes UTF-16 with replacement of lone surrogates, and an escaped one survives that unchanged), a
 * surrogate pair left as the character it encodes.
 */
export function quote(s: string, out: string[]): void {
  out.push('"');
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
    if (i > start) out.push(s.substring(start, i));
    start = i + 1;
    if (c == 0x22) out.push('\\"');
    else if (c == 0x5c) out.push("\\\\");
    else if (c == 0x0a) out.push("\\n");
    else if (c == 0x0d) out.push("\\r");
    else if (c == 0x09) out.push("\\t");
    else if (c == 0x08) out.push("\\b");
    else if (c == 0x0c) out.push("\\f");
    else out.push("\\u" + HEX.charAt((c >> 12) & 15) + HEX.charAt((c >> 8) & 15) + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15));
  }
  if (start < s.length) out.push(start == 0 ? s : s.substring(start));
  out.push('"');
}
