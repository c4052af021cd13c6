#!/usr/bin/env bash
# Installs everything ptmc needs on a fresh machine: the package with its test extras, and
# Debian's graphviz (for `dot`, which renders counterexample SVGs) and chromium with its driver
# (the HTML trace viewer's browser test) when they are missing.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
apt_install() {
  [ -n "${apt_updated:-}" ] || { apt-get update -qq && apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v dot >/dev/null 2>&1 || apt_install graphviz
# The browser test skips, saying why, where chromium cannot be installed; nothing else needs it.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver || echo "setup.sh: could not install chromium; the HTML viewer's browser test will be skipped" >&2
fi
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
