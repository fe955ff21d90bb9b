/**
 * `lattice policy check`: every problem in a policy set, without loading it into the engine. Parses (file, line and
 * column for syntax errors; lattice's annotation rules, see source.ts) and, when a Cedar schema is given (e.g. from
 * schema.ts), validates every policy against it in Cedar's strict mode: unknown actions, entity types or context
 * fields, type errors, and reads of optional fields without `has` are errors.
 *
 * Refuses nothing silently: a schema Cedar cannot read is itself a problem, and the set is acceptable only when no
 * problem has severity "error". Validation warnings (e.g. "policy is impossible") are reported as warnings.
 */
import { checkParseSchema, validate, type DetailedError, type SchemaJson, type ValidationError } from '@cedar-policy/cedar-wasm/nodejs';
import { describeError } from '../errors.ts';
import type { PolicyFile } from './hash.ts';
import { charIndexOfByte, describeCedarError, errorByteOffset, LineMap } from './location.ts';
import { parsePolicyFiles, type LoadedPolicy, type PolicyProblem } from './source.ts';

/** The file name a bare policy text is checked under. */
export const DEFAULT_POLICY_FILE = 'policy.cedar';

function general(message: string): PolicyProblem {
  return { severity: 'error', file: null, policy: null, line: null, column: null, message };
}

function located(severity: PolicyProblem['severity'], policy: LoadedPolicy | undefined, policyId: string, error: DetailedError, lines: ReadonlyMap<string, LineMap>): PolicyProblem {
  const message = describeCedarError(error);
  if (policy === undefined) return { severity, file: null, policy: policyId, line: null, column: null, message };
  const bytes = errorByteOffset(error);
  const map = lines.get(policy.file);
  const position = bytes === null || map === undefined ? policy : map.position(policy.offset + charIndexOfByte(policy.text, bytes));
  return { severity, file: policy.file, policy: policy.id, line: position.line, column: position.column, message };
}

/** Every problem in the policy files (or one bare policy text), validated against `schema` when given. */
export function checkPolicies(input: string | readonly PolicyFile[], schema?: SchemaJson<string>): PolicyProblem[] {
  const files = typeof input === 'string' ? [{ name: DEFAULT_POLICY_FILE, text: input }] : input;
  const parsed = parsePolicyFiles(files);
  if (!parsed.ok) return [...parsed.problems];
  if (schema === undefined) return [];
  try {
    const schemaAnswer = checkParseSchema(schema);
    if (schemaAnswer.type === 'failure') return schemaAnswer.errors.map((e) => general(`schema: ${describeCedarError(e)}`));
    const byId = new Map(parsed.policies.map((p) => [p.id, p]));
    const answer = validate({
      schema,
      policies: { staticPolicies: Object.fromEntries(parsed.policies.map((p) => [p.id, p.text])) },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') return answer.errors.map((e) => general(`validation failed: ${describeCedarError(e)}`));
    const lines = new Map(parsed.files.map((f) => [f.name, new LineMap(f.text)]));
    const report = (severity: PolicyProblem['severity']) => (v: ValidationError) => located(severity, byId.get(v.policyId), v.policyId, v.error, lines);
    return [
      ...answer.validationErrors.map(report('error')),
      ...answer.validationWarnings.map(report('warning')),
      ...answer.otherWarnings.map((e) => ({ ...general(describeCedarError(e)), severity: 'warning' as const })),
    ];
  } catch (error) {
    return [general(`Cedar could not validate the policies: ${describeError(error)}`)];
  }
}
