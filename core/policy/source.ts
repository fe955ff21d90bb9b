/**
 * Policy files → the policies lattice evaluates, each with its id, place in the file, effect, Cedar text, JSON
 * form (EST) and lattice annotations.
 *
 * A policy's id is its `@id` annotation, else `<file>:policy<N>` (N counts the file's policies from 0, like Cedar's
 * own `policy<N>` ids, prefixed with the file so ids stay unique across files).
 *
 * Refuses (as problems, never a partial set): text Cedar cannot parse (with file, line and column), templates
 * (lattice links none), duplicate ids, annotations lattice does not know (a typo such as `@aproval("required")`
 * would otherwise turn an approval permit into a plain one), `@approval` with any value but "required" or on a
 * forbid, and an empty `@id`.
 */
import { policySetTextToParts, policyToJson, type DetailedError, type PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { describeError, isLatticeError } from '../errors.ts';
import { sortPolicyFiles, type PolicyFile } from './hash.ts';
import { charIndexOfByte, describeCedarError, errorByteOffset, LineMap } from './location.ts';

export interface LoadedPolicy {
  readonly id: string;
  readonly file: string;
  /** UTF-16 index of the policy's first character (its first annotation) in its file. */
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  readonly effect: 'permit' | 'forbid';
  /** The policy's source text, exactly as in the file. */
  readonly text: string;
  readonly json: PolicyJson;
  /** `@reason`, returned to the agent on a denial or hold. */
  readonly reason: string | null;
  /** `@approval("required")`: a permit that only ever yields `hold`. */
  readonly approval: boolean;
}

export interface PolicyProblem {
  readonly severity: 'error' | 'warning';
  readonly file: string | null;
  readonly policy: string | null;
  readonly line: number | null;
  readonly column: number | null;
  readonly message: string;
}

export type ParsedPolicies =
  | { readonly ok: true; readonly files: readonly PolicyFile[]; readonly policies: readonly LoadedPolicy[] }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

const KNOWN_ANNOTATIONS = new Set(['id', 'reason', 'approval']);

function problem(file: string | null, policy: string | null, position: { line: number; column: number } | null, message: string): PolicyProblem {
  return { severity: 'error', file, policy, line: position?.line ?? null, column: position?.column ?? null, message };
}

function cedarProblem(lines: LineMap, file: PolicyFile, base: number, baseText: string, error: DetailedError, policy: string | null): PolicyProblem {
  const bytes = errorByteOffset(error);
  const position = bytes === null ? null : lines.position(base + charIndexOfByte(baseText, bytes));
  return problem(file.name, policy, position, describeCedarError(error));
}

function annotation(annotations: PolicyJson['annotations'], key: string): string | undefined {
  return annotations !== undefined && Object.hasOwn(annotations, key) ? annotations[key] : undefined;
}

/**
 * Cedar returns a file's policies sorted by its own ids, `policy0`, `policy1`, … in source order, compared as
 * strings (so `policy10` sorts before `policy2`). Undo that sort; valid because templates, which would share the
 * numbering, have been refused before this is called.
 */
function inSourceOrder(sortedById: readonly string[]): string[] {
  const ids = sortedById.map((_, i) => `policy${i}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ordered: string[] = [];
  ids.forEach((id, k) => {
    ordered[Number(id.slice('policy'.length))] = sortedById[k]!;
  });
  return ordered;
}

/** Where the policy text starts in the file at or after `from`, skipping copies inside a `//` comment; -1 if nowhere. */
function findPolicy(fileText: string, policyText: string, from: number): number {
  for (let at = fileText.indexOf(policyText, from); at >= 0; at = fileText.indexOf(policyText, at + 1)) {
    const lineStart = fileText.lastIndexOf('\n', at - 1) + 1;
    if (!fileText.slice(lineStart, at).includes('//')) return at;
  }
  return -1;
}

/** Parses one file's policies; appends its problems. */
function parseFile(file: PolicyFile, problems: PolicyProblem[]): LoadedPolicy[] {
  const lines = new LineMap(file.text);
  let parts: ReturnType<typeof policySetTextToParts>;
  try {
    parts = policySetTextToParts(file.text);
  } catch (error) {
    problems.push(problem(file.name, null, null, `Cedar could not read the file: ${describeError(error)}`));
    return [];
  }
  if (parts.type === 'failure') {
    for (const error of parts.errors) problems.push(cedarProblem(lines, file, 0, file.text, error, null));
    return [];
  }
  for (const template of parts.policy_templates) {
    const at = findPolicy(file.text, template, 0);
    problems.push(problem(file.name, null, at < 0 ? null : lines.position(at), 'templates (?principal / ?resource slots) are not supported'));
  }
  if (parts.policy_templates.length > 0) return [];
  const policies: LoadedPolicy[] = [];
  let cursor = 0;
  inSourceOrder(parts.policies).forEach((text, index) => {
    const found = findPolicy(file.text, text, cursor);
    const offset = found < 0 ? cursor : found;
    if (found >= 0) cursor = found + text.length;
    const position = lines.position(offset);
    let answer: ReturnType<typeof policyToJson>;
    try {
      answer = policyToJson(text);
    } catch (error) {
      problems.push(problem(file.name, null, position, `Cedar could not convert the policy: ${describeError(error)}`));
      return;
    }
    if (answer.type === 'failure') {
      for (const error of answer.errors) problems.push(cedarProblem(lines, file, offset, text, error, null));
      return;
    }
    const json = answer.json;
    const id = annotation(json.annotations, 'id') ?? `${file.name}:policy${index}`;
    const count = problems.length;
    for (const key of Object.keys(json.annotations ?? {})) {
      if (!KNOWN_ANNOTATIONS.has(key)) {
        problems.push(problem(file.name, id, position, `unknown annotation @${key}; lattice knows @id, @reason and @approval("required")`));
      }
    }
    if (id.length === 0) problems.push(problem(file.name, id, position, '@id must not be empty'));
    const approval = annotation(json.annotations, 'approval');
    if (approval !== undefined && approval !== 'required') {
      problems.push(problem(file.name, id, position, `@approval must be "required", not ${JSON.stringify(approval)}`));
    }
    if (approval !== undefined && json.effect === 'forbid') {
      problems.push(problem(file.name, id, position, '@approval only applies to permit policies'));
    }
    if (problems.length > count) return;
    policies.push({
      id,
      file: file.name,
      offset,
      line: position.line,
      column: position.column,
      effect: json.effect,
      text,
      json,
      reason: annotation(json.annotations, 'reason') ?? null,
      approval: approval === 'required',
    });
  });
  return policies;
}

/** Parses every file (sorted by name); either all policies or every problem found. */
export function parsePolicyFiles(files: readonly PolicyFile[]): ParsedPolicies {
  let sorted: PolicyFile[];
  try {
    sorted = sortPolicyFiles(files);
  } catch (error) {
    if (!isLatticeError(error)) throw error;
    return { ok: false, problems: [problem(null, null, null, error.message)] };
  }
  const problems: PolicyProblem[] = [];
  const policies = sorted.flatMap((file) => parseFile(file, problems));
  const seen = new Map<string, LoadedPolicy>();
  for (const policy of policies) {
    const first = seen.get(policy.id);
    if (first === undefined) {
      seen.set(policy.id, policy);
    } else {
      const where = `${first.file}:${first.line}`;
      problems.push(problem(policy.file, policy.id, policy, `policy id ${JSON.stringify(policy.id)} is already used at ${where}`));
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, files: sorted, policies };
}
