// `echo`: no effects; the output is the params, unchanged. For tests, demos and measuring the gate itself.
import { err, ok, take } from "./abi";
import { readRequest } from "./common";
import { stringify } from "./json";
export { cabi_post_finish, cabi_post_plan, cabi_realloc } from "./abi";

export function plan(ptr: usize, len: usize): usize {
  take(ptr, len);
  return ok('{"effects":[]}');
}

export function finish(requestPtr: usize, requestLen: usize, resultsPtr: usize, resultsLen: usize): usize {
  const request = readRequest(take(requestPtr, requestLen));
  take(resultsPtr, resultsLen);
  if (request === null) return err("the request is not a JSON object with action and params");
  return ok(stringify(request.params));
}
