#!/usr/bin/env bash
# The main job on one machine: `jetpack demo` — dense Fashion-MNIST predecessor and target
# (classes 0–4, kept in results/demo/upstream), the coordinator recycles a MoE Jetpack model and
# trains it with expert parallelism on 2 jetpack-worker processes (classes 5–9, 500 images per
# class), baselines from scratch for the same steps, then the result table and
# results/demo/convergence.png. Extra arguments go to `jetpack demo` (e.g. --smoke, --out DIR;
# see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet build src/Cli -c Release -nologo -v quiet
exec dotnet src/Cli/bin/Release/net10.0/jetpack.dll demo "$@"
