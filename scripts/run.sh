#!/usr/bin/env bash
# The main job on one machine. Until the distributed demo lands (coordinator issue), it builds
# V-JetMoE-T and trains it for a few real steps on random 224² images, printing parameter count,
# loss and time per step. Extra arguments go to `jetpack smoke` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet build src/Coordinator -c Release -nologo -v quiet
exec dotnet src/Coordinator/bin/Release/net10.0/jetpack.dll smoke "$@"
