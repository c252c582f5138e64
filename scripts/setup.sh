#!/usr/bin/env bash
# Installs what the build and the tests need, and nothing else:
#  - Debian packages listed in scripts/packages.d/*.txt (apt-get, only if missing);
#  - npm test oracles: every tests/oracles/*/package.json gets its pinned
#    packages in its own node_modules/ (ignored by git), from the npm registry.
# Safe to run again: it does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t wanted < <(grep -hv '^\s*#' scripts/packages.d/*.txt | awk 'NF{print $1}' | sort -u)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v npm >/dev/null 2>&1 && compgen -G "tests/oracles/*/package.json" >/dev/null; then
  echo "setup: npm not found; install nodejs with npm" >&2
  exit 1
fi
for pkg in tests/oracles/*/package.json; do
  [ -f "$pkg" ] || continue
  dir=$(dirname "$pkg")
  stamp="$dir/node_modules/.mlxe-installed"
  if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ] || [ "$pkg" -nt "$stamp" ]; then
    echo "setup: npm oracles in $dir"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
done
