// `http.request`: the params are the request (method, url, headers, body); the manifest's secrets are named for
// the host to inject. The gate's sink check decides whether the URL and headers are allowed.
import { err, ok, take } from "./abi";
import { readRequest } from "./common";
import { httpPlan } from "./http";
import { Json, Kind, stringMember, stringify } from "./json";
export { cabi_post_finish, cabi_post_plan, cabi_realloc } from "./abi";
export { finish } from "./http";

export function plan(ptr: usize, len: usize): usize {
  const request = readRequest(take(ptr, len));
  if (request === null) return err("the request is not a JSON object with action and params");
  const url = stringMember(request.params, "url");
  if (url === null) return err("params.url must be a string");
  const method = stringMember(request.params, "method");
  if (method === null) return err("params.method must be a string");
  const headers = Json.object();
  const given = request.params.get("headers");
  if (given !== null && given.kind == Kind.Object) {
    for (let i = 0; i < given.keys.length; i++) {
      const v = given.items[i];
      headers.set(given.keys[i].toLowerCase(), v.kind == Kind.String ? v : Json.str(stringify(v)));
    }
  }
  const body = request.params.get("body");
  return ok(httpPlan(request.action, method, url, headers, body !== null && body.kind == Kind.String ? body : Json.nil()));
}
