/**
 * Every module that defines one of lattice's own schemas, imported so that each registers them (compiledOnUse in
 * core/server/validate.ts). The build precompiles what this list registers (scripts/precompile-schemas.ts) and
 * test/core/schemas.test.ts checks the same; a schema in a module missing here still works, compiled on its
 * first use, and the test that counts them says so.
 */
import '../core/actions/manifest.ts';
import '../core/actions/routes.ts';
import '../core/config/config.ts';
import '../core/gate/sandbox-routes.ts';
import '../core/identity/delegations.ts';
import '../core/identity/routes.ts';
import '../core/pipeline/reports.ts';
import '../core/pipeline/routes.ts';
import '../core/policy/cases.ts';
import '../providers/runner/plan.ts';
import '../sandbox/profile.ts';

export { OWN_COMPILATIONS } from '../core/server/validate.ts';
