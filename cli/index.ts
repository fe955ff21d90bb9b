/** Entry point of the bundled `lattice` binary (no top-level await, so the same bundle can become a CJS/SEA build). */
import { main } from './main.ts';

// A reader that stops early (`lattice audit | head`) is not an error: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`lattice: internal error: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
