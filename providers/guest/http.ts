// What the two HTTP guests share: the planned effect (naming every secret the manifest declares), and `finish`,
// which turns the response into the output.
import { err, ok, take } from "./abi";
import { Json, Kind, stringify } from "./json";
import { isJson } from "./json-parse";
import { onlyResult, pick, planOf } from "./common";

/** The plan of one HTTP effect; `body` is a string or JSON null. */
export function httpPlan(action: Json, method: string, url: string, headers: Json, body: Json): string {
  const effect = Json.object()
    .set("kind", Json.str("http"))
    .set("method", Json.str(method))
    .set("url", Json.str(url))
    .set("headers", headers)
    .set("body", body)
    .set("secrets", secretNames(action));
  return planOf(effect);
}

export function finish(requestPtr: usize, requestLen: usize, resultsPtr: usize, resultsLen: usize): usize {
  take(requestPtr, requestLen);
  const output = responseOutput(take(resultsPtr, resultsLen));
  if (output === null) return err("expected one http result");
  return ok(stringify(output));
}

/** The names of the manifest's secrets (the host injects their values; the provider never sees them). */
function secretNames(action: Json): Json {
  const names = Json.array();
  const secrets = action.get("secrets");
  if (secrets === null || secrets.kind != Kind.Array) return names;
  for (let i = 0; i < secrets.items.length; i++) {
    if (secrets.items[i].kind == Kind.String) names.push(secrets.items[i]);
  }
  return names;
}

/** `application/json`, or `application/<anything>+json`, optionally with parameters; any case. */
export function isJsonType(contentType: string): bool {
  const t = contentType.toLowerCase();
  if (!t.startsWith("application/")) return false;
  let i = 12;
  const plus = t.indexOf("+json", i);
  if (plus >= 0) {
    for (let k = i; k < plus; k++) {
      const c = t.charCodeAt(k);
      const allowed = (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x2b || c == 0x2d;
      if (!allowed) return false;
    }
    i = plus + 5;
  } else if (t.substr(i, 4) == "json") {
    i += 4;
  } else return false;
  if (i == t.length) return true;
  const c = t.charCodeAt(i); // a word boundary must follow
  return !((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f);
}

/** `{status, headers, body, bytes, sha256, truncated}`: a JSON body parsed, any other body as its text. */
function responseOutput(resultsText: string): Json | null {
  const r = onlyResult(resultsText, "http");
  if (r === null) return null;
  const out = pick(r, ["status", "headers", "body", "bytes", "sha256", "truncated"]);
  const headers = r.get("headers");
  const contentType: Json | null = headers === null ? null : headers.get("content-type");
  const truncated = r.get("truncated");
  const body = r.get("body");
  if (contentType !== null && contentType.kind == Kind.String && isJsonType(contentType.text) && truncated !== null && truncated.kind == Kind.Bool && !truncated.flag && body !== null && body.kind == Kind.String) {
    // Checked, then passed on as text: a megabyte of JSON needs no tree here, and the host parses the output anyway.
    // A server that says JSON and sends something else: the text as it came.
    if (isJson(body.text)) out.set("body", Json.raw(body.text));
  }
  return out;
}
