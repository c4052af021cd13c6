#!/usr/bin/env bash
# Installs everything ptmc needs on a fresh machine: the package with its test extras, and
# Debian's graphviz (for `dot`, which renders counterexample SVGs) when it is missing.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
if ! command -v dot >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
fi
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
