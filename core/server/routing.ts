/**
 * Which route a request names. The request target and its %-encoded parameters are attacker-controlled: a target
 * that is not a URL path, or a parameter whose %-encoding is malformed (`%ZZ`, a lone `%`, bytes that are not
 * UTF-8), is the client's fault and refused with BAD_REQUEST (400), never an internal failure. A path served on
 * another listener only is NOT_FOUND on this one; a path served with another method is METHOD_NOT_ALLOWED.
 */
import { LatticeError } from '../errors.ts';
import type { Listener, Route } from './http.ts';

export interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

export interface Target {
  readonly pathname: string;
  readonly query: URLSearchParams;
}

export function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/:([a-zA-Z]+)/g, (_, name: string) => {
    names.push(name);
    return '([^/]{1,256})';
  });
  return { ...route, handle: route.handle.bind(route), pattern: new RegExp(`^${source}$`), names };
}

/** The path and query of a request target (origin-form, or absolute-form whose authority is ignored). */
export function parseTarget(target: string | undefined): Target {
  let url: URL;
  try {
    url = new URL(target ?? '/', 'http://gate.invalid');
  } catch {
    throw new LatticeError('BAD_REQUEST', 'the request target is not a URL path');
  }
  return { pathname: url.pathname, query: url.searchParams };
}

export function match(routes: readonly CompiledRoute[], listener: Listener, method: string, path: string): { route: CompiledRoute; params: Record<string, string> } {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m === null || !route.on.includes(listener)) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    const params: Record<string, string> = {};
    route.names.forEach((name, i) => (params[name] = decodeParam(name, m[i + 1] ?? '')));
    return { route, params };
  }
  if (pathMatched) throw new LatticeError('METHOD_NOT_ALLOWED', `${method.slice(0, 16)} is not allowed here`);
  throw new LatticeError('NOT_FOUND', 'no such endpoint');
}

function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LatticeError('BAD_REQUEST', `the ${name} in the path is not valid %-encoded UTF-8`);
  }
}
