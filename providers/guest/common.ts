// What every built-in guest shares: reading the request, picking members, building a plan.
import { Json, Kind, stringify, stringMember } from "./json";
import { parse } from "./json-parse";

export class Request {
  constructor(
    public action: Json,
    public params: Json,
  ) {}
}

/** The request the host sent, or null (the host always sends valid JSON; null means a host bug). */
export function readRequest(text: string): Request | null {
  const r = parse(text);
  if (r === null) return null;
  const action = r.get("action");
  const params = r.get("params");
  if (action === null || params === null || params.kind != Kind.Object) return null;
  return new Request(action, params);
}

/** `{"effects": [effect]}` for one effect. */
export function planOf(effect: Json): string {
  return stringify(Json.object().set("effects", Json.array().push(effect)));
}

/** The one result of the kind the plan asked for, or null. */
export function onlyResult(text: string, kind: string): Json | null {
  const results = parse(text);
  if (results === null || results.kind != Kind.Array || results.items.length != 1) return null;
  const r = results.items[0];
  return stringMember(r, "kind") == kind ? r : null;
}

/** A new object with these members of `from`, in this order (absent members are left out). */
export function pick(from: Json, keys: string[]): Json {
  const out = Json.object();
  for (let i = 0; i < keys.length; i++) {
    const v = from.get(keys[i]);
    if (v !== null) out.set(keys[i], v);
  }
  return out;
}

/**
 * Drops `.` and empty segments. Keeps what the gate's sink check refuses (`..`, a leading `/`) so that
 * normalizing can never turn a refused path into an allowed one.
 */
export function normalizeRelative(path: string): string {
  if (path.startsWith("/")) return path;
  const segments = path.split("/");
  const kept: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s.length != 0 && s != ".") kept.push(s);
  }
  return kept.join("/");
}
