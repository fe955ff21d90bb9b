/**
 * Limits of the admin socket's sandbox routes that `lattice sandbox` also needs: a module of its own so the
 * sandbox command does not load the gate's routes (and their schemas) to learn a number.
 */

/** The most sandbox events one request may carry. */
export const MAX_SANDBOX_EVENTS = 256;
