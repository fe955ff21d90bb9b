// Builds the built-in provider components from their AssemblyScript source, offline:
//   asc (providers/guest/<name>.ts) → core module → jco embed (providers/wit/provider.wit, UTF-16 strings) →
//   jco new → providers/components/<name>.wasm
//
//   npm run build:providers                     build and write the components
//   npm run build:providers -- --check          build and fail unless the bytes equal the committed components
//                                               (the build is reproducible; CI proves the committed bytes come
//                                               from the committed source)
//   npm run build:providers -- --sign KEY.pem   also sign each component with the release key
//
// The committed components are signed by the release key (providers/components/<name>.wasm.sig); a component
// whose bytes change needs a new signature from that key, which never lives in this repository. The guests use
// AssemblyScript's minimal runtime, collecting after each call (providers/guest/abi.ts says why).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';
import { signBytes } from '../core/trust/signature.ts';
import { BUILTIN_COMPONENTS } from '../providers/builtin/components.ts';
import { providerComponent } from './jco-tools.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root); // asc resolves the entry and --use paths from the working directory
const args = process.argv.slice(2);
const check = args.includes('--check');
const signKey = args.includes('--sign') ? args[args.indexOf('--sign') + 1] : undefined;
const wit = readFileSync(join(root, 'providers/wit/provider.wit'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'lattice-providers-'));
const stale: string[] = [];
try {
  for (const name of Object.values(BUILTIN_COMPONENTS)) {
    const out = join(work, `${name}.core.wasm`);
    const { error } = await asc.main(
      [`providers/guest/${name}.ts`, '--outFile', out, '--runtime', 'minimal', '--use', 'abort=providers/guest/abi/abort', '--optimizeLevel', '3', '--shrinkLevel', '1', '--noAssert'],
      { stdout: process.stdout, stderr: process.stderr },
    );
    if (error) throw new Error(`asc failed for ${name} (its messages are above): ${error.message}`);
    const component = await providerComponent(readFileSync(out), wit);
    const target = join(root, 'providers/components', `${name}.wasm`);
    if (check) {
      if (!existsSync(target) || !readFileSync(target).equals(component)) stale.push(name);
    } else {
      writeFileSync(target, component);
      if (signKey !== undefined) writeFileSync(`${target}.sig`, `${JSON.stringify(signBytes(component, 'component', readFileSync(signKey, 'utf8')), null, 2)}\n`);
    }
    process.stdout.write(`${check ? 'checked' : 'built'} ${name}.wasm (${component.length} bytes)\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (stale.length > 0) {
  process.stderr.write(
    `build-providers: the committed components differ from what the source builds: ${stale.join(', ')}.\n` +
      'Run `npm run build:providers` and commit the result (and sign it with the release key).\n',
  );
  process.exit(1);
}
