/** Entry point of the bundled `lattice` binary (no top-level await, so the same bundle can become a CJS/SEA build). */
import { main } from './main.ts';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`lattice: internal error: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
