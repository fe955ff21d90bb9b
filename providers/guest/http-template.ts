// `http.template`: the manifest's `[template]` is the request, with `{params.x}` placeholders. One component serves
// every integration that is data over it (GitHub, Slack, …).
//
// Placeholders: in the URL each value is percent-encoded (a param cannot add path segments or a query); in header
// values it is inserted as text (the sink check refuses line breaks); in the body a string that is exactly one
// placeholder takes the param's JSON value, and is left out when the param is absent; a placeholder inside a
// longer string is inserted as text. A placeholder naming a missing param outside a whole-string body value
// refuses the plan.
import { err, ok, take } from "./abi";
import { readRequest } from "./common";
import { httpPlan } from "./http";
import { Json, Kind, stringMember, stringify } from "./json";
export { cabi_post_finish, cabi_post_plan, cabi_realloc } from "./abi";
export { finish } from "./http";

const PREFIX = "{params.";

/** Where the first placeholder problem is recorded (AssemblyScript has no exceptions). */
class Problem {
  message: string | null = null;
}

function isNameStart(c: i32): bool {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f;
}

function isName(c: i32): bool {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39);
}

/** The index just past the placeholder `{params.NAME}` starting at `i`, or -1 when none starts there. */
function placeholderEnd(s: string, i: i32): i32 {
  let k = i + PREFIX.length;
  if (k >= s.length || !isNameStart(s.charCodeAt(k))) return -1;
  while (k < s.length && isName(s.charCodeAt(k))) k++;
  return k < s.length && s.charCodeAt(k) == 0x7d ? k + 1 : -1;
}

function valueText(v: Json): string {
  return v.kind == Kind.String ? v.text : stringify(v);
}

const UNRESERVED = "-_.!~*'()";
const HEX = "0123456789ABCDEF";

/** encodeURIComponent: UTF-8, every byte outside the unreserved set as %XX; a lone surrogate is a problem. */
function encodeComponent(s: string, problem: Problem): string {
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = <i32>s.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || UNRESERVED.indexOf(String.fromCharCode(c)) >= 0) {
      out.push(String.fromCharCode(c));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? <i32>s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || next < 0xdc00 || next > 0xdfff) {
        problem.message = "a URL parameter contains an unpaired surrogate";
        return "";
      }
      c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (c < 0x80) pct(c, out);
    else if (c < 0x800) {
      pct(0xc0 | (c >> 6), out);
      pct(0x80 | (c & 63), out);
    } else if (c < 0x10000) {
      pct(0xe0 | (c >> 12), out);
      pct(0x80 | ((c >> 6) & 63), out);
      pct(0x80 | (c & 63), out);
    } else {
      pct(0xf0 | (c >> 18), out);
      pct(0x80 | ((c >> 12) & 63), out);
      pct(0x80 | ((c >> 6) & 63), out);
      pct(0x80 | (c & 63), out);
    }
  }
  return out.join("");
}

function pct(byte: i32, out: string[]): void {
  out.push("%" + HEX.charAt(byte >> 4) + HEX.charAt(byte & 15));
}

/** The template with every placeholder replaced; a missing (or null) param is a problem. */
function fill(template: string, params: Json, encode: bool, problem: Problem): string {
  const parts: string[] = [];
  let start = 0;
  let i = template.indexOf(PREFIX);
  while (i >= 0) {
    const end = placeholderEnd(template, i);
    if (end < 0) {
      i = template.indexOf(PREFIX, i + 1);
      continue;
    }
    const name = template.substring(i + PREFIX.length, end - 1);
    const v = params.get(name);
    if (v === null || v.kind == Kind.Null) {
      problem.message = "params." + name + " is required by the request template";
      return "";
    }
    parts.push(template.substring(start, i));
    parts.push(encode ? encodeComponent(valueText(v), problem) : valueText(v));
    if (problem.message !== null) return "";
    start = end;
    i = template.indexOf(PREFIX, end);
  }
  parts.push(template.substring(start));
  return parts.join("");
}

/** The body template with params filled in; null means "leave this member out". */
function fillBody(node: Json, params: Json, problem: Problem): Json | null {
  if (node.kind == Kind.String) {
    const s = node.text;
    if (s.startsWith(PREFIX) && placeholderEnd(s, 0) == s.length) return params.get(s.substring(PREFIX.length, s.length - 1));
    return Json.str(fill(s, params, false, problem));
  }
  if (node.kind == Kind.Array) {
    const out = Json.array();
    for (let i = 0; i < node.items.length; i++) {
      const v = fillBody(node.items[i], params, problem);
      if (v !== null) out.push(v);
    }
    return out;
  }
  if (node.kind == Kind.Object) {
    const out = Json.object();
    for (let i = 0; i < node.keys.length; i++) {
      const v = fillBody(node.items[i], params, problem);
      if (v !== null) out.set(node.keys[i], v);
    }
    return out;
  }
  return node;
}

export function plan(ptr: usize, len: usize): usize {
  const request = readRequest(take(ptr, len));
  if (request === null) return err("the request is not a JSON object with action and params");
  const id = stringMember(request.action, "id");
  const t = request.action.get("template");
  const url = stringMember(t, "url");
  const method = stringMember(t, "method");
  if (t === null || url === null || method === null) return err((id === null ? "the action" : id) + " has no usable [template]");
  const params = request.params;
  const problem = new Problem();
  const headers = Json.object();
  const given = t.get("headers");
  if (given !== null && given.kind == Kind.Object) {
    for (let i = 0; i < given.keys.length; i++) {
      headers.set(given.keys[i].toLowerCase(), Json.str(fill(valueText(given.items[i]), params, false, problem)));
      if (problem.message !== null) return err(problem.message!);
    }
  }
  const bodyTemplate = t.get("body");
  const body: Json | null = bodyTemplate === null ? null : fillBody(bodyTemplate, params, problem);
  if (problem.message !== null) return err(problem.message!);
  if (body !== null && headers.get("content-type") === null) headers.set("content-type", Json.str("application/json"));
  const filledUrl = fill(url, params, true, problem);
  if (problem.message !== null) return err(problem.message!);
  return ok(httpPlan(request.action, method.toUpperCase(), filledUrl, headers, body === null ? Json.nil() : Json.str(stringify(body))));
}
