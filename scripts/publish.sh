#!/usr/bin/env bash
# Publishes the two programs into ONE directory — exactly the layout the container image copies
# (deploy/docker/Dockerfile: COPY --from=build /out /opt/jetpack) and that `jetpack start-workers`,
# `train --workers` and `bench exchange` expect: jetpack.dll and jetpack-worker.dll side by side
# (the launcher starts the worker from the directory of the running jetpack), their apphosts
# `jetpack` and `jetpack-worker`, the native libtorch / LibTorchSharp libraries under
# runtimes/linux-x64/native with the Debian 12 TorchSharp fix applied (build/TorchSharpFix.targets
# runs after each publish), SkiaSharp's native library.
#
#   scripts/publish.sh [OUT]            framework-dependent Release publish into OUT (default out/jetpack)
#   scripts/publish.sh --check [OUT]    the same, then starts the published binaries: `jetpack --help`,
#                                       `jetpack-worker` (its usage), `jetpack models` (loads libtorch) and a
#                                       2-worker all-to-all from OUT (`jetpack bench exchange`, needs iperf3)
#
# Extra build properties pass through $PUBLISH_PROPS (e.g. -p:JetpackTorchBackend=cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ "${1:-}" == "--check" ]]; then check=1; shift; fi
out="$(realpath -m "${1:-out/jetpack}")"

# the jetpack executable moves to src/Cli with issue 16; publish whichever holds it
cli=src/Cli
[[ -d "$cli" ]] || cli=src/Coordinator
worker=src/GpuWorker

rm -rf "$out.tmp"
for project in "$worker" "$cli"; do
  echo "publish.sh: $project → $out" >&2
  # shellcheck disable=SC2086
  dotnet publish "$project" -c Release -nologo -v quiet -o "$out.tmp" ${PUBLISH_PROPS:-}
done

# the layout, checked before it replaces the previous one (all or nothing)
missing=()
for f in jetpack jetpack.dll jetpack.runtimeconfig.json jetpack.deps.json \
         jetpack-worker jetpack-worker.dll jetpack-worker.runtimeconfig.json jetpack-worker.deps.json \
         runtimes/linux-x64/native/libLibTorchSharp.so runtimes/linux-x64/native/libtorch.so; do
  [[ -e "$out.tmp/$f" ]] || missing+=("$f")
done
if ((${#missing[@]})); then
  echo "publish.sh: the published directory lacks: ${missing[*]}" >&2
  exit 1
fi
rm -rf "$out"
mv "$out.tmp" "$out"
echo "publish.sh: published to $out ($(du -sh "$out" | cut -f1))" >&2

if ((check)); then
  "$out/jetpack" --help > /dev/null
  # jetpack-worker without arguments prints its usage and exits 2
  { "$out/jetpack-worker" 2>&1 || true; } | grep -q '^usage: jetpack-worker' || { echo "publish.sh --check: jetpack-worker did not start" >&2; exit 1; }
  "$out/jetpack" models | head -5
  results="$(mktemp -d)"
  trap 'rm -rf "$results"' EXIT
  "$out/jetpack" bench exchange --ranks 2 --mib 1 --rounds 2 --iperf-seconds 1 --models '' --out "$results"
  echo "publish.sh --check: the published jetpack and jetpack-worker start and exchange tensors" >&2
fi
