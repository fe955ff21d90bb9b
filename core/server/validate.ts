/**
 * Request bodies are attacker-controlled: each is checked against a JSON Schema (ajv, compiled once) before a
 * handler sees it, and refused with VALIDATION_FAILED naming the first offending field. Unknown members are
 * refused unless a schema allows them.
 */
import { Ajv, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { LatticeError } from '../errors.ts';

const ajv = new Ajv({ allErrors: false, strict: true });

export function validator<T>(schema: JSONSchemaType<T>): (body: unknown) => T {
  const validate: ValidateFunction<T> = ajv.compile(schema);
  return (body) => {
    if (body === undefined) throw new LatticeError('VALIDATION_FAILED', 'the request needs a JSON body');
    if (validate(body)) return body;
    const e = validate.errors?.[0];
    const field = e === undefined ? 'body' : e.instancePath === '' ? 'body' : e.instancePath.slice(1).replaceAll('/', '.');
    const detail = e?.keyword === 'additionalProperties' ? `has an unknown member ${JSON.stringify(String(e.params['additionalProperty']).slice(0, 64))}` : (e?.message ?? 'is invalid');
    throw new LatticeError('VALIDATION_FAILED', `${field} ${detail}`);
  };
}
