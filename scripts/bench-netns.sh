#!/usr/bin/env bash
# The data-plane rule of issue 20 measured across a real link: two Linux network namespaces joined by
# veth pairs on a bridge (unshaped: shaping to a few Gbit/s would hide a slow plane), one worker
# rank in each, iperf3 between them, then `jetpack bench exchange --netns` — gRPC, TCP and iperf3
# side by side in one run. Addresses are the benchmarking range 198.18.0.0/15 only, on a bridge
# with no route out of the machine; the namespaces, veths and bridge are deleted on exit, also
# when the run fails or is interrupted. Needs root, `ip` (iproute2) and iperf3.
#
#   scripts/bench-netns.sh [bench exchange options…]     e.g. --mib 8 --rounds 10
# The default data plane follows the printed "gRPC / TCP" ratio: gRPC only at ≥ 80 %.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then echo "bench-netns.sh: needs root (ip netns, veth, bridge)" >&2; exit 2; fi
command -v iperf3 > /dev/null || { echo "bench-netns.sh: iperf3 missing (scripts/setup.sh --bench)" >&2; exit 2; }

tag="jpdp$$"                       # unique per run: never touches another run's namespaces
bridge="${tag}br"
ns=("${tag}r0" "${tag}r1")
ips=(198.18.0.1 198.18.0.2)
host_ip=198.18.0.254               # this namespace's address on the bridge (the bench talks to the ranks' control ports)

cleanup() {
  for n in "${ns[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$n" 2>/dev/null || true; done
  for i in 0 1; do ip link del "${tag}v$i" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip link add "$bridge" type bridge
ip addr add "$host_ip/24" dev "$bridge"
ip link set "$bridge" up
for i in 0 1; do
  ip netns add "${ns[$i]}"
  ip link add "${tag}v$i" type veth peer name eth0 netns "${ns[$i]}"
  ip link set "${tag}v$i" master "$bridge" up
  ip -n "${ns[$i]}" addr add "${ips[$i]}/24" dev eth0
  ip -n "${ns[$i]}" link set eth0 up
  ip -n "${ns[$i]}" link set lo up
done

dll=src/Cli/bin/Release/net10.0/jetpack.dll
[[ -f "$dll" ]] || dll=src/Coordinator/bin/Release/net10.0/jetpack.dll
timeout 1200 dotnet "$dll" bench exchange --ranks 2 --models '' --netns "${ns[0]}=${ips[0]},${ns[1]}=${ips[1]}" "$@"
