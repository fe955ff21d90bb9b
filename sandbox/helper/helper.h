/*
 * What the helper's two parts share: the plan (read once from fd 3 into NUL-separated strings, each op a name
 * followed by a fixed number of arguments), the one way a setup step fails, and the status fd lattice reads.
 *
 * lattice-sandbox.c: the plan, the namespaces, PID 1, the relays, Landlock, seccomp and the agent.
 * root.c:            the root filesystem the agent sees, built from the plan's filesystem ops.
 */
#ifndef LATTICE_SANDBOX_HELPER_H
#define LATTICE_SANDBOX_HELPER_H

#define STATUS_FD 4
#define MAX_ITEMS 4096

/* Who reports a failure ("lattice-sandbox", or "lattice-sandbox (init)" in PID 1). */
extern const char *status_prefix;
/* Reports a setup failure to lattice (fd 4: "error <message>: <strerror(errno)>") and stderr, then exits 125. */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

extern char *items[MAX_ITEMS];
extern int n_items;
int op_arity(const char *name);
/* Calls fn(args) for every op named `name`, in plan order. */
void each(const char *name, void (*fn)(char **args));
unsigned long long num(const char *s, int base);

/* root.c: assembles the new root from the plan's filesystem ops and pivots into it (PID 1, before the agent). */
void build_root(void);

#endif
