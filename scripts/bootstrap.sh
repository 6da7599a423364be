#!/usr/bin/env bash
# Set up everything `make demo` and `make test` need: system tools, then a virtualenv.
#   scripts/bootstrap.sh            python venv only (git checked)
#   scripts/bootstrap.sh --rpm      also rpmbuild, createrepo_c, rpmsign, gpg (apt-get when root)
set -euo pipefail
cd "$(dirname "$0")/.."

want_rpm=0
[ "${1:-}" = "--rpm" ] && want_rpm=1

die() { echo "bootstrap: error: $*" >&2; exit 2; }

command -v git >/dev/null || die "git is not installed: install it (apt-get install git / dnf install git)"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python >= 3.10"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1): superbuild needs Python >= 3.10 (set PYTHON=...)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "$PYTHON cannot create virtual environments: install python3-venv"

if [ "$want_rpm" = 1 ]; then
  missing=()
  for tool in rpmbuild rpmspec rpmsign createrepo_c gpg cpio rpm2cpio unzip zstd dnf git-lfs; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  # rpm's Python bindings (the rpm pipeline reads specs with librpm, through specfile)
  { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import rpm' 2>/dev/null; } || missing+=("python3-rpm")
  if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "bootstrap: installing ${missing[*]} (Debian packages rpm createrepo-c gnupg cpio unzip zstd python3-rpm dnf git-lfs)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq rpm createrepo-c gnupg cpio unzip zstd python3-rpm dnf git-lfs >/dev/null
    elif command -v dnf >/dev/null && [ "$(id -u)" = 0 ]; then
      dnf install -y -q rpm-build rpm-sign createrepo_c gnupg2 cpio unzip zstd python3-rpm git-lfs
    else
      echo "bootstrap: WARNING: ${missing[*]} missing and no apt-get/dnf as root:" >&2
      echo "bootstrap: WARNING: the RPM tests will be SKIPPED and the demo cannot build RPMs." >&2
    fi
  fi
fi

stamp=.venv/.superbuild-installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: creating .venv and installing superbuild with its test and dask extras"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test,dask]'
  touch "$stamp"
fi
