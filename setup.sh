#!/usr/bin/env bash
# Installs everything ptmc needs on a fresh machine: a C compiler when there is none (for the
# exact store's index), the package with its test extras, and
# Debian's graphviz (for `dot`, which renders counterexample SVGs) and chromium with its driver
# (the HTML trace viewer's browser test) when they are missing.
set -euo pipefail
cd "$(dirname "$0")"
apt_install() {
  [ -n "${apt_updated:-}" ] || { apt-get update -qq && apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# The exact store's index is C (src/ptmc/explore/_identity.pyx), compiled by pip install.
command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
command -v dot >/dev/null 2>&1 || apt_install graphviz
# The browser test skips, saying why, where chromium cannot be installed; nothing else needs it.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver || echo "setup.sh: could not install chromium; the HTML viewer's browser test will be skipped" >&2
fi
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
