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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false; // Unparseable text is not canonical JSON.
  }
  return canonicalizeJcs(parsed) === text;
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
