/** The version printed by `lattice --version`; the build replaces LATTICE_VERSION with package.json's version and commit. */
declare const LATTICE_VERSION: string | undefined;

export const VERSION: string = typeof LATTICE_VERSION === 'string' ? LATTICE_VERSION : '0.0.0-dev';
