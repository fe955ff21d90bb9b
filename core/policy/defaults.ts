/**
 * The policies a new home starts with, one file per preset (DESIGN: a laptop user's starting point). Default deny
 * does the rest: anything not permitted here is refused with NO_POLICY.
 *
 * - sandboxed: echo and reads run; writes and messages need a human; merging is forbidden.
 * - coordinator: echo, reads and issues run; pull requests, writes and messages need a human; merging is forbidden.
 * - isolated: echo only.
 */
import type { PolicyFile } from './hash.ts';

const SANDBOXED = `@id("sandboxed-read")
@reason("sandboxed agents may run echo and read files in the workspace")
permit (principal in Preset::"sandboxed", action in [Action::"echo", Action::"fs.read"], resource);

@id("sandboxed-write-needs-approval")
@approval("required")
@reason("writes and messages from a sandboxed agent wait for a human")
permit (
  principal in Preset::"sandboxed",
  action in [Action::"fs.write", Action::"github.issue.create", Action::"github.pr.create", Action::"slack.message.post"],
  resource
);

@id("sandboxed-never-merges")
@reason("sandboxed agents never merge pull requests")
forbid (principal in Preset::"sandboxed", action == Action::"github.pr.merge", resource);
`;

const COORDINATOR = `@id("coordinator-routine")
@reason("coordinators may run echo, read files and open issues")
permit (principal in Preset::"coordinator", action in [Action::"echo", Action::"fs.read", Action::"github.issue.create"], resource);

@id("coordinator-changes-need-approval")
@approval("required")
@reason("changes and messages from a coordinator wait for a human")
permit (
  principal in Preset::"coordinator",
  action in [Action::"fs.write", Action::"github.pr.create", Action::"slack.message.post"],
  resource
);

@id("coordinator-never-merges")
@reason("agents never merge pull requests; a person does")
forbid (principal in Preset::"coordinator", action == Action::"github.pr.merge", resource);
`;

const ISOLATED = `@id("isolated-echo-only")
@reason("isolated agents may only run echo")
permit (principal in Preset::"isolated", action == Action::"echo", resource);
`;

export const DEFAULT_POLICIES: readonly PolicyFile[] = [
  { name: 'coordinator.cedar', text: COORDINATOR },
  { name: 'isolated.cedar', text: ISOLATED },
  { name: 'sandboxed.cedar', text: SANDBOXED },
];
