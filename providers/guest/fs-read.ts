// `fs.read`: one file beneath the manifest's root. The plan carries the normalized relative path; the gate's sink
// check refuses `..`, absolute paths and deny globs, and the host refuses symlinks when it reads.
import { err, ok, take } from "./abi";
import { normalizeRelative, onlyResult, pick, planOf, readRequest } from "./common";
import { Json, stringMember, stringify } from "./json";
export { cabi_post_finish, cabi_post_plan, cabi_realloc } from "./abi";

export function plan(ptr: usize, len: usize): usize {
  const request = readRequest(take(ptr, len));
  if (request === null) return err("the request is not a JSON object with action and params");
  const path = stringMember(request.params, "path");
  if (path === null) return err("params.path must be a string");
  return ok(planOf(Json.object().set("kind", Json.str("fs.read")).set("path", Json.str(normalizeRelative(path)))));
}

export function finish(requestPtr: usize, requestLen: usize, resultsPtr: usize, resultsLen: usize): usize {
  take(requestPtr, requestLen);
  const result = onlyResult(take(resultsPtr, resultsLen), "fs.read");
  if (result === null) return err("expected one fs.read result");
  return ok(stringify(pick(result, ["path", "content", "encoding", "bytes", "sha256"])));
}
