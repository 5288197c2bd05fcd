#!/usr/bin/env bash
# A cluster on one machine (issue 20, docs/operations/cluster-rig.md): every piece in its own Linux
# network namespace with its own address on one bridge, numbered from the benchmarking range
# 198.18.0.0/15 and with no route out of the machine (no default route in any namespace, no address
# outside the rig's /24).
#
#   cluster-netns.sh up N            namespaces ${RIG}-coord (coordinator + Redis), ${RIG}-prom
#                                    (Prometheus) and ${RIG}-w0 … ${RIG}-w(N-1); removes stale ones first
#   cluster-netns.sh down            kills what runs inside them, deletes namespaces, veths and bridge
#   cluster-netns.sh addr NAME       the address of coord | prom | w<i> | host (the bridge's own)
#   cluster-netns.sh link-down NAME  cut NAME's link (a partition of that one host)
#   cluster-netns.sh link-up NAME
#   cluster-netns.sh cut A B         A and B lose each other only (both still reach every other host):
#                                    a permanent neighbour entry with an unused MAC swallows their packets
#   cluster-netns.sh heal A B
#   cluster-netns.sh status
#
# Environment: JETPACK_RIG (name prefix, default jprig; ≤ 8 characters), JETPACK_RIG_NET (the /24's
# first three octets inside 198.18.0.0/15, default 198.19.20), JETPACK_RIG_RATE (tc tbf rate per
# link, e.g. 2gbit; empty = unshaped). Needs root, iproute2 (ip, tc).
set -euo pipefail

RIG=${JETPACK_RIG:-jprig}
NET=${JETPACK_RIG_NET:-198.19.20}
RATE=${JETPACK_RIG_RATE:-}
BR="${RIG}-br"
SWALLOW_MAC=02:00:00:00:00:01

die() { echo "cluster-netns.sh: $*" >&2; exit 2; }

[[ ${#RIG} -le 8 && $RIG =~ ^[a-z][a-z0-9]*$ ]] || die "JETPACK_RIG '$RIG' must be 1-8 lowercase letters/digits"
# 198.18.0.0/15 = 198.18.x.x and 198.19.x.x only (RFC 2544 benchmarking): never a routable network
[[ $NET =~ ^198\.1[89]\.([0-9]{1,3})$ && ${BASH_REMATCH[1]} -le 255 ]] || die "JETPACK_RIG_NET '$NET' is not a /24 inside 198.18.0.0/15"

need_root() { [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, veths, a bridge)"; }

# host octet of each member: bridge .1, coordinator .2, Prometheus .3, worker i .(10+i)
octet() {
  case $1 in
    host) echo 1 ;;
    coord) echo 2 ;;
    prom) echo 3 ;;
    w[0-9]*) local i=${1#w}; [[ $i =~ ^[0-9]+$ && $i -lt 200 ]] || die "no member '$1'"; echo $((10 + i)) ;;
    *) die "no member '$1' (coord, prom, w<i>, host)" ;;
  esac
}
addr() { echo "$NET.$(octet "$1")"; }
ns() { echo "${RIG}-$1"; }
veth() { echo "${RIG}-$1"; }     # the bridge side; inside the namespace the link is eth0

members() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${RIG}-" | sed "s/^${RIG}-//" || true; }

shape() { # $1 device, $2 namespace or empty
  [[ -z $RATE ]] && return 0
  if [[ -n ${2:-} ]]; then ip netns exec "$2" tc qdisc replace dev "$1" root tbf rate "$RATE" burst 1mb latency 50ms
  else tc qdisc replace dev "$1" root tbf rate "$RATE" burst 1mb latency 50ms; fi
}

add_member() {
  local m=$1 n v a
  n=$(ns "$m"); v=$(veth "$m"); a=$(addr "$m")
  ip netns add "$n"
  ip link add "$v" type veth peer name eth0 netns "$n"
  ip link set "$v" master "$BR" up
  ip -n "$n" link set lo up
  ip -n "$n" addr add "$a/24" dev eth0
  ip -n "$n" link set eth0 up
  shape "$v"
  shape eth0 "$n"
}

down() {
  need_root
  local m n
  for m in $(members); do
    n=$(ns "$m")
    # only what runs inside the rig's own namespaces
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
    ip link del "$(veth "$m")" 2>/dev/null || true
    ip netns del "$n" 2>/dev/null || true
  done
  # veths whose namespace is gone already, then the bridge
  for v in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${RIG}-" || true); do
    [[ $v == "$BR" ]] || ip link del "$v" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
}

up() {
  need_root
  local count=${1:-}
  [[ $count =~ ^[0-9]+$ && $count -ge 1 && $count -le 64 ]] || die "up needs a worker count in 1..64, got '${count}'"
  down
  ip link add "$BR" type bridge
  # the bridge's own address lets this (root) namespace reach the rig; no namespace gets a default
  # route, so nothing in the rig can reach beyond the /24
  ip addr add "$(addr host)/24" dev "$BR"
  ip link set "$BR" up
  add_member coord
  add_member prom
  for ((i = 0; i < count; i++)); do add_member "w$i"; done
  echo "rig ${RIG} up: bridge ${BR} $(addr host)/24, coord $(addr coord), prom $(addr prom), workers $(addr w0)..$(addr "w$((count - 1))")${RATE:+, links shaped to $RATE}"
}

cut_pair() { # $1 on|off, $2 $3 members
  local a=$2 b=$3
  if [[ $1 == on ]]; then
    ip -n "$(ns "$a")" neigh replace "$(addr "$b")" lladdr $SWALLOW_MAC dev eth0 nud permanent
    ip -n "$(ns "$b")" neigh replace "$(addr "$a")" lladdr $SWALLOW_MAC dev eth0 nud permanent
  else
    ip -n "$(ns "$a")" neigh del "$(addr "$b")" dev eth0 2>/dev/null || true
    ip -n "$(ns "$b")" neigh del "$(addr "$a")" dev eth0 2>/dev/null || true
  fi
}

cmd=${1:-}
case $cmd in
  up) up "${2:-}" ;;
  down) down ;;
  addr) addr "${2:?addr needs a member}" ;;
  link-down) need_root; ip link set "$(veth "${2:?link-down needs a member}")" down ;;
  link-up) need_root; ip link set "$(veth "${2:?link-up needs a member}")" up ;;
  cut) need_root; cut_pair on "${2:?cut needs two members}" "${3:?cut needs two members}" ;;
  heal) need_root; cut_pair off "${2:?heal needs two members}" "${3:?heal needs two members}" ;;
  status)
    for m in $(members); do echo "$(ns "$m") $(addr "$m") $(ip -br link show "$(veth "$m")" 2>/dev/null | awk '{print $2}')"; done ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; [[ $cmd == -h || $cmd == --help ]] && exit 0; exit 2 ;;
esac
