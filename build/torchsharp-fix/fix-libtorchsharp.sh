#!/usr/bin/env bash
# Makes TorchSharp 0.107.0's libLibTorchSharp.so load on a libstdc++ older than GCC 13 (Debian 12).
#
# Why: the .so asks for GLIBCXX_3.4.32 for exactly one symbol, std::ios_base_library_init()
# (_ZSt21ios_base_library_initv). Debian 12's libstdc++ stops at GLIBCXX_3.4.30. We
#   1. build a shim libiosinit.so that defines that function (empty: GCC 12 initialises streams
#      through <iostream>'s static init object),
#   2. clear the symbol's version and make the .so need the shim, found through $ORIGIN,
#   3. mark the GLIBCXX_3.4.32 requirement weak, so the loader tolerates its absence.
# See ../../../shared/ENVIRONMENT.md ("TorchSharp"). Idempotent; a no-op where the system
# libstdc++ already provides GLIBCXX_3.4.32. Run by build/TorchSharpFix.targets after every
# build and publish; usable by hand: fix-libtorchsharp.sh DIR_OR_SO...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools="$here/.out"
version=GLIBCXX_3.4.32
symbol=_ZSt21ios_base_library_initv

die() { echo "fix-libtorchsharp: error: $*" >&2; exit 1; }

system_libstdcxx() {
  local path
  path=$(/sbin/ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
  [ -n "$path" ] || path=/usr/lib/x86_64-linux-gnu/libstdc++.so.6
  echo "$path"
}

if grep -q "$version" "$(system_libstdcxx)" 2>/dev/null; then
  exit 0   # the system libstdc++ is new enough: nothing to repair
fi

command -v patchelf >/dev/null || die "patchelf is missing (apt-get install patchelf, or run ./scripts/setup.sh)"

build_tools() {
  # Built once per checkout; a lock keeps parallel project builds from racing.
  mkdir -p "$tools"
  exec 9>"$tools/.lock"
  flock 9
  if [ ! -f "$tools/libiosinit.so" ] || [ "$here/iosinit.cpp" -nt "$tools/libiosinit.so" ]; then
    command -v g++ >/dev/null || die "g++ is missing (apt-get install g++, or run ./scripts/setup.sh)"
    g++ -O2 -shared -fPIC -o "$tools/libiosinit.so.tmp" "$here/iosinit.cpp"
    mv "$tools/libiosinit.so.tmp" "$tools/libiosinit.so"
  fi
  if [ ! -x "$tools/elf-weaken-version" ] || [ "$here/elf-weaken-version.c" -nt "$tools/elf-weaken-version" ]; then
    command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc, or run ./scripts/setup.sh)"
    gcc -O2 -Wall -Werror -o "$tools/elf-weaken-version.tmp" "$here/elf-weaken-version.c"
    mv "$tools/elf-weaken-version.tmp" "$tools/elf-weaken-version"
  fi
  flock -u 9
}

patch_one() {
  local so=$1 dir
  dir=$(dirname "$so")
  if patchelf --print-needed "$so" | grep -qx libiosinit.so; then
    [ -f "$dir/libiosinit.so" ] || cp "$tools/libiosinit.so" "$dir/libiosinit.so"
    return 0   # already repaired
  fi
  # Work on a copy and rename it into place, so an interrupted build never leaves a half-patched file.
  local tmp="$so.fixing.$$"
  cp "$so" "$tmp"
  patchelf --clear-symbol-version "$symbol" "$tmp"
  patchelf --add-needed libiosinit.so --set-rpath '$ORIGIN' "$tmp"
  "$tools/elf-weaken-version" "$tmp" "$version" || {
    rc=$?; rm -f "$tmp"
    [ $rc -eq 3 ] && die "$so has no $version requirement: is this TorchSharp 0.107.0? Update build/torchsharp-fix."
    die "could not mark $version weak in $so"
  }
  cp "$tools/libiosinit.so" "$dir/libiosinit.so"
  mv -f "$tmp" "$so"
  echo "fix-libtorchsharp: repaired $so for this libstdc++ (shim libiosinit.so, weak $version)"
}

[ $# -gt 0 ] || die "usage: fix-libtorchsharp.sh DIR_OR_SO..."
build_tools
found=0
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r so; do patch_one "$so"; found=1; done < <(find "$arg" -name libLibTorchSharp.so -type f)
  elif [ -f "$arg" ]; then
    patch_one "$arg"; found=1
  fi
done
[ $found -eq 1 ] || echo "fix-libtorchsharp: no libLibTorchSharp.so under $*: nothing to do"
