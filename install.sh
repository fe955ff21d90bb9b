#!/bin/sh
# Installs the lattice binary for this machine, without root:
#
#   curl -fsSL https://github.com/lattice-sh/lattice/releases/latest/download/install.sh | sh
#   sh install.sh [--prefix DIR] [--version V] [--base URL]
#
# It downloads lattice-<os>-<arch>.tar.gz and SHA256SUMS, and checks the tarball's SHA-256 against its line in
# SHA256SUMS before anything is extracted or run: a tarball that is not listed, or whose hash differs, is refused and
# nothing is installed. The binary goes to ~/.local/bin (or DIR/bin), replacing an earlier one in a single rename,
# and only after it has run once from there.
#
# The release is fetched from GitHub (latest, or --version), from --base, or from LATTICE_INSTALL_BASE: an https://
# URL, a file:// URL or a local directory. Plain http:// is refused: SHA256SUMS comes over the same channel as the
# tarball, so an unauthenticated channel could swap both.
#
# Everything runs from main, called on the last line, so a download cut short by the network runs nothing.

set -eu

REPOSITORY=https://github.com/lattice-sh/lattice

die() {
  printf 'lattice install: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: install.sh [--prefix DIR] [--version V] [--base URL]

  --prefix DIR   install to DIR/bin/lattice (default: ~/.local/bin/lattice)
  --version V    a release such as 0.1.0 (default: the latest)
  --base URL     where the release's files are: https://…, file://… or a directory
                 (default: $LATTICE_INSTALL_BASE, else the GitHub release)

With curl: curl -fsSL <url>/install.sh | sh -s -- --prefix DIR
EOF
}

# The release target for this machine, as lattice-<os>-<arch>.tar.gz names it.
detect_target() {
  kernel=$(uname -s)
  case $kernel in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "unsupported operating system '$kernel' (uname -s): lattice ships for Linux and macOS" ;;
  esac
  machine=$(uname -m)
  case $machine in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported processor '$machine' (uname -m): lattice ships for x86_64 and arm64" ;;
  esac
  # A shell translated by Rosetta 2 reports x86_64 on Apple silicon; the native arm64 build is the one to use.
  if [ "$os-$arch" = darwin-x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = 1 ]; then
    arch=arm64
  fi
  echo "$os-$arch"
}

# Copies the release file $1 into $2, from a local directory or over HTTPS with curl or wget.
fetch() {
  case $from in
    https://*)
      if command -v curl >/dev/null 2>&1; then
        curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL -o "$2" "$from/$1" ||
          die "could not download $from/$1 (curl failed, see above): check the version and your connection"
      elif command -v wget >/dev/null 2>&1; then
        # wget has no --proto-redir, but its log names every URL it fetched: one that left HTTPS is refused.
        wget --https-only --secure-protocol=TLSv1_2 -O "$2" "$from/$1" 2>"$2.log" ||
          die "could not download $from/$1 (wget: $(awk 'NF { last = $0 } END { print last }' "$2.log")): check the version and your connection"
        if grep -q '^--.*--  http://' "$2.log"; then
          die "$from/$1 redirected to plain http: refusing it; use an https:// base that stays on HTTPS"
        fi
      else
        die "neither curl nor wget is installed: install one of them, or set LATTICE_INSTALL_BASE to a local directory"
      fi
      ;;
    *)
      [ -f "$from/$1" ] || die "$from/$1 does not exist: LATTICE_INSTALL_BASE (or --base) must hold the release's files"
      cp "$from/$1" "$2"
      ;;
  esac
}

# Prints the SHA-256 of file $1 in lowercase hex.
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    line=$(sha256sum "$1")
  elif command -v shasum >/dev/null 2>&1; then
    line=$(shasum -a 256 "$1")
  else
    die "no SHA-256 tool found (sha256sum or shasum): install coreutils or perl's shasum; lattice is never installed unverified"
  fi
  echo "${line%% *}"
}

# Refuses unless SHA256SUMS ($1) has exactly one well-formed line for $2 and the file $3 has that hash.
verify() {
  expected=$(awk -v name="$2" '$2 == name || $2 == "*" name { print $1 }' "$1" | tr 'A-F' 'a-f')
  case $expected in
    '') die "$2 is not listed in SHA256SUMS: refusing to install a file the release does not vouch for" ;;
    *[!0-9a-f]*) die "SHA256SUMS has no single well-formed SHA-256 line for $2: refusing to install" ;;
  esac
  [ "${#expected}" -eq 64 ] || die "SHA256SUMS has no single well-formed SHA-256 line for $2: refusing to install"
  actual=$(sha256_of "$3")
  [ "$actual" = "$expected" ] ||
    die "SHA-256 mismatch for $2: SHA256SUMS says $expected, the file is $actual. Nothing was installed. The download is corrupt or was tampered with: try again, and if it persists report it to the lattice maintainers"
}

main() {
  prefix=''
  version=latest
  base=${LATTICE_INSTALL_BASE:-}
  while [ "$#" -gt 0 ]; do
    case $1 in
      --prefix | --version | --base)
        [ "$#" -ge 2 ] || die "$1 needs a value (see --help)"
        case $1 in
          --prefix) prefix=$2 ;;
          --version) version=$2 ;;
          --base) base=$2 ;;
        esac
        shift 2
        ;;
      --prefix=*) prefix=${1#*=} && shift ;;
      --version=*) version=${1#*=} && shift ;;
      --base=*) base=${1#*=} && shift ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
  done

  version=${version#v}
  case $version in
    '' | *[!0-9A-Za-z.+-]*) die "--version must look like 0.1.0 or 'latest', not '$version'" ;;
  esac
  if [ -z "$base" ]; then
    if [ "$version" = latest ]; then
      base=$REPOSITORY/releases/latest/download
    else
      base=$REPOSITORY/releases/download/v$version
    fi
  fi
  case $base in
    https://*) from=${base%/} ;;
    file://*)
      from=${base#file://}
      from=${from#localhost}
      case $from in
        *%*) die "'$base' has %-escapes, which this installer does not decode: pass the directory's path instead" ;;
        /*) ;;
        *) die "'$base' is not a file:// URL of an absolute path" ;;
      esac
      ;;
    http://*) die "'$base' is plain http: SHA256SUMS and the tarball would both be open to tampering in transit; use https://" ;;
    *://*) die "'$base' is not an https:// or file:// URL or a directory" ;;
    *) from=$base ;;
  esac

  target=$(detect_target)
  tarball=lattice-$target.tar.gz

  if [ -n "$prefix" ]; then
    bindir=${prefix%/}/bin
  else
    [ -n "${HOME:-}" ] || die "HOME is not set: pass --prefix DIR to install into DIR/bin"
    bindir=$HOME/.local/bin
  fi

  # The target directory is checked before anything is downloaded: a refusal costs no download.
  mkdir -p "$bindir" 2>/dev/null || die "cannot create $bindir: choose a --prefix you own (this installer never needs root; do not run it with sudo)"
  [ -w "$bindir" ] || die "$bindir is not writable by $(id -un 2>/dev/null || echo this user): choose a --prefix you own (this installer never needs root; do not run it with sudo)"
  bindir=$(cd "$bindir" && pwd)
  [ ! -d "$bindir/lattice" ] || die "$bindir/lattice is a directory: remove it or choose another --prefix"

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/lattice-install.XXXXXX") || die "could not create a temporary directory (TMPDIR=${TMPDIR:-/tmp})"
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  if [ "$version" = latest ]; then
    echo "lattice install: $target from $from"
  else
    echo "lattice install: $version for $target from $from"
  fi
  fetch SHA256SUMS "$tmp/SHA256SUMS"
  fetch "$tarball" "$tmp/$tarball"
  verify "$tmp/SHA256SUMS" "$tarball" "$tmp/$tarball"
  echo "  verified   $tarball: SHA-256 $actual matches SHA256SUMS"

  mkdir "$tmp/unpacked"
  tar -xzf "$tmp/$tarball" -C "$tmp/unpacked" "lattice-$target/lattice" ||
    die "$tarball has no lattice-$target/lattice inside: the release is malformed"
  [ -f "$tmp/unpacked/lattice-$target/lattice" ] || die "$tarball has no lattice-$target/lattice file inside: the release is malformed"

  # Beside the target, so the final step is a rename on one file system: a running lattice keeps its old file, and
  # a failed run leaves the earlier install in place.
  staged=$(mktemp "$bindir/.lattice.XXXXXX") || die "cannot write in $bindir: choose a --prefix you own"
  trap 'rm -rf "$tmp"; rm -f "$staged"' EXIT
  cp "$tmp/unpacked/lattice-$target/lattice" "$staged"
  chmod 0755 "$staged"
  reported=$("$staged" --version 2>&1) ||
    die "the downloaded lattice does not run here (${reported:-no output}); nothing was installed. Is $bindir on a noexec mount? Try another --prefix"
  case $version in
    latest) ;;
    *) case "$reported " in "$version "*) ;; *) die "asked for $version, but the downloaded binary says '$reported'; nothing was installed" ;; esac ;;
  esac
  mv -f "$staged" "$bindir/lattice"
  echo "  installed  $bindir/lattice"
  echo "  runs       lattice --version: $reported"

  echo
  case ":${PATH:-}:" in
    *":$bindir:"*) echo "Start the gate: lattice up    (lattice doctor checks this machine first)" ;;
    *)
      echo "$bindir is not on your PATH. Add it to your shell's profile:"
      echo "  export PATH=\"$bindir:\$PATH\""
      echo "Then start the gate: lattice up    (lattice doctor checks this machine first)"
      ;;
  esac
}

main "$@"
