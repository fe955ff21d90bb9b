#!/bin/sh
# The "lattice verify" GitHub Action (action.yml): installs lattice with this checkout's install.sh into a temporary
# directory, then checks an exported evidence bundle offline with `lattice verify --bundle`. The step fails when the
# bundle does not verify, when it is missing, or when lattice cannot be installed.
#
# Inputs come from the environment, never from text spliced into the workflow's script:
#   LATTICE_BUNDLE        the bundle (`lattice export --out FILE`); required
#   LATTICE_KEYSET        the key set to trust (optional; without it only the bundle's integrity is proven, since a
#                         bundle carries its own key set)
#   LATTICE_VERSION       the lattice release to install (default: latest)
#   LATTICE_INSTALL_BASE  where install.sh downloads from (optional; read by install.sh itself)
#   RUNNER_TEMP           where the install goes (default: $TMPDIR, else /tmp)

set -eu

die() {
  printf 'lattice verify: %s\n' "$*" >&2
  exit 1
}

bundle=${LATTICE_BUNDLE:-}
[ -n "${bundle}" ] || die "no bundle given: set the action's 'path' input to a file written by \`lattice export\`"
[ -f "${bundle}" ] || die "no bundle at '${bundle}' (relative to $(pwd)): check the action's 'path' input"

keyset=${LATTICE_KEYSET:-}
[ -z "${keyset}" ] || [ -f "${keyset}" ] || die "no key set at '${keyset}' (relative to $(pwd)): check the action's 'keyset' input"

here=$(cd "$(dirname "$0")/.." && pwd)
install_dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/lattice.XXXXXX") || die "could not create a temporary directory"
trap 'rm -rf "${install_dir}"' EXIT

sh "${here}/install.sh" --prefix "${install_dir}" --version "${LATTICE_VERSION:-latest}" >&2 ||
  die "lattice could not be installed (see above)"

status=0
if [ -n "${keyset}" ]; then
  "${install_dir}/bin/lattice" verify --bundle "${bundle}" --keyset "${keyset}" || status=$?
else
  echo "lattice verify: no 'keyset' input, so this proves the bundle is intact, not who signed it" >&2
  "${install_dir}/bin/lattice" verify --bundle "${bundle}" || status=$?
fi
[ "${status}" -eq 0 ] || die "${bundle} did not verify (lattice verify exited ${status})"
