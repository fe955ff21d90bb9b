/**
 * RFC 8785 (JCS) canonical JSON. Every hash and signature in lattice is computed over this form, so two parties
 * that hold the same value compute the same bytes.
 *
 * Rejects (throws) values JSON cannot represent faithfully: undefined, functions, symbols, bigints, NaN/Infinity
 * and cyclic structures. A value that cannot be canonicalized is never hashed "approximately".
 */
import canonicalizeJcs from 'canonicalize';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export function canonicalize(value: JsonValue): string {
  assertJson(value, '$', new Set());
  const text = canonicalizeJcs(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON form');
  return text;
}

/** Parses JSON text and reports whether it is already in canonical form. */
export function isCanonical(text: string): boolean {
  return parseCanonical(text) !== undefined;
}

/**
 * Parses `text` if it is canonical JSON; returns undefined otherwise (including when it is not JSON at all).
 *
 * Fast path (the verifier runs this on every event): if re-serialising with JSON.stringify reproduces the text
 * and every object's keys are in UTF-16 code-unit order, the text is canonical, because JSON.stringify emits no
 * whitespace and formats numbers and escapes strings exactly as RFC 8785 does. Text with a `\u` escape (control
 * characters, lone surrogates, which JCS forbids) and objects with integer-like keys (which JSON.parse reorders)
 * take the slow path through the canonicalize library.
 */
export function parseCanonical(text: string): { value: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // Unparseable text is not canonical JSON.
  }
  if (!text.includes('\\u') && JSON.stringify(value) === text && keysSorted(value)) return { value };
  try {
    return canonicalizeJcs(value) === text ? { value } : undefined;
  } catch {
    return undefined; // The library refuses values JCS cannot represent (lone surrogates): not canonical.
  }
}

function keysSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0 && !((keys[i - 1] as string) < key)) return false;
    if (!keysSorted((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

function assertJson(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path} is not a finite number`);
      return;
    case 'object': {
      if (value === null) return;
      if (seen.has(value)) throw new TypeError(`${path} is cyclic`);
      seen.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, i) => assertJson(item, `${path}[${i}]`, seen));
      } else {
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw new TypeError(`${path} is not a plain object`);
        for (const [key, item] of Object.entries(value)) assertJson(item, `${path}.${key}`, seen);
      }
      seen.delete(value);
      return;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      throw new TypeError(`${path} is a ${typeof value}, which JSON cannot represent`);
  }
}
