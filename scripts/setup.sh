#!/usr/bin/env bash
# Installs what Jetpack needs on a fresh Debian 12 machine that has the .NET 10 SDK. Idempotent:
# only missing apt packages are installed, with sudo only when not root.
#   scripts/setup.sh           build + test needs: g++ and patchelf (TorchSharp's libstdc++ repair),
#                              libmetis5 (graph recycling's partitioner) and dataset-fashion-mnist
#                              (real IDX data under /usr/share/datasets/fashion-mnist); redis-server and
#                              prometheus (the coordinator's tests start real ones on loopback) and
#                              kubernetes-client (kubectl renders deploy/k8s offline in a test; unless a kubectl exists)
#   scripts/setup.sh --bench   also Debian's PyTorch + OpenBLAS and torchvision + PIL (the benchmark peers: bench step, bench data; golden-file script) and iperf3
#                              (raw TCP loopback throughput beside `jetpack bench exchange`)
set -euo pipefail

packages=(g++ patchelf libmetis5 dataset-fashion-mnist redis-server prometheus)
# Debian's kubectl; skipped when another kubectl (e.g. the cloud SDK's) already owns /usr/bin/kubectl.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch python3-numpy python3-torchvision python3-pil libopenblas0-openmp iperf3) ;;
    *) echo "setup.sh: unknown option $arg (known: --bench)" >&2; exit 2 ;;
  esac
done

if ! command -v dotnet >/dev/null; then
  echo "setup.sh: the .NET 10 SDK is required (dotnet not found on PATH)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "setup.sh: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
