#!/usr/bin/env bash
# check_install.sh BUILD_DIR CONSUMER_DIR — see tests/install/CMakeLists.txt.
set -euo pipefail
build=$1
consumer=$2
tmp=$(mktemp -d /tmp/mlxe-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n1)
libdir=${libdir%/pkgconfig}

# 1. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c17 -Wall -Werror "$consumer/main.c" -o "$tmp/with_pkgconfig" $(pkg-config --cflags --libs mlxengine)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/with_pkgconfig")
echo "pkg-config consumer: $out"
[[ "$out" == mlxengine\ * ]] || { echo "unexpected output from the pkg-config consumer"; exit 1; }

# 2. CMake package
cmake -S "$consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/cmake-build/consumer")
echo "CMake consumer: $out"
[[ "$out" == mlxengine\ * ]] || { echo "unexpected output from the CMake consumer"; exit 1; }
"$tmp/prefix/bin/mlxengine" version >/dev/null
echo "install check passed"
