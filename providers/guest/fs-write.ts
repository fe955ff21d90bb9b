// `fs.write`: one file beneath the manifest's root. The plan carries the normalized path and the content; the host
// adds the content's UTF-8 size and SHA-256 to the effect (a provider cannot misstate them).
import { err, ok, take } from "./abi";
import { normalizeRelative, onlyResult, pick, planOf, readRequest } from "./common";
import { Json, stringMember, stringify } from "./json";
export { cabi_post_finish, cabi_post_plan, cabi_realloc } from "./abi";

export function plan(ptr: usize, len: usize): usize {
  const request = readRequest(take(ptr, len));
  if (request === null) return err("the request is not a JSON object with action and params");
  const path = stringMember(request.params, "path");
  const content = stringMember(request.params, "content");
  if (path === null || content === null) return err("params.path and params.content must be strings");
  const effect = Json.object().set("kind", Json.str("fs.write")).set("path", Json.str(normalizeRelative(path))).set("content", Json.str(content));
  return ok(planOf(effect));
}

export function finish(requestPtr: usize, requestLen: usize, resultsPtr: usize, resultsLen: usize): usize {
  take(requestPtr, requestLen);
  const result = onlyResult(take(resultsPtr, resultsLen), "fs.write");
  if (result === null) return err("expected one fs.write result");
  return ok(stringify(pick(result, ["path", "bytes", "sha256", "created"])));
}
