#!/usr/bin/env bash
# The held-back heartbeat (fault 2, 2026-12-06), reproduced with the built binaries, as root: coordinator + one worker
# (l2 in w2), link down, worker killed, link up; prints l2's jetpack_worker_up and heartbeat age every second.
# Before the fix l2 went back to up=1 a second after link-up. Usage: sudo bash repro-held-back-heartbeat.sh (DOWN=25 AFTER=40)
# Reproduce: a worker killed while its link is down, link restored: does the coordinator count it alive again?
set -u
export JETPACK_RIG=jph1 JETPACK_RIG_NET=198.19.41 JETPACK_RIG_RATE=2gbit
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
RIG=$ROOT/scripts/cluster-netns.sh
BIN=$ROOT/tests/Coordinator.Tests/bin/Release/net10.0
D=$(mktemp -d); mkdir -p $D/redis $D/data
echo tok-0123456789abcdef-repro > $D/token
cleanup() { for p in $(jobs -p); do kill -KILL $p 2>/dev/null; done; bash $RIG down; rm -rf "$D"; }
trap cleanup EXIT
bash $RIG up 3
ip netns exec jph1-coord redis-server --bind 127.0.0.1 --port 6379 --dir $D/redis --save "" --appendonly no > $D/redis.log 2>&1 &
sleep 2
ip netns exec jph1-coord dotnet $BIN/jetpack.dll coordinator --clustering redis --redis 127.0.0.1:6379 --listen 198.19.41.2 --port 5080 --metrics-port 9464 --silo-port 11111 --gateway-port 0 --data-dir $D/data --token-file $D/token --acquire-timeout 60 > $D/coord.log 2>&1 &
for i in $(seq 90); do grep -q "metrics: " $D/coord.log && break; sleep 1; done
ip netns exec jph1-w2 dotnet $BIN/jetpack-worker.dll --coordinator http://198.19.41.2:5080 --worker-id l2 --listen 198.19.41.12 --port 7000 --data-port 7001 --metrics-port 7002 --token-file $D/token --threads 1 --data-plane tcp > $D/l2.log 2>&1 &
WPID=$!
W() { curl -s --max-time 5 http://198.19.41.2:9464/metrics | grep -E "^jetpack_worker_(up|heartbeat_age_seconds)\{" | grep "l2" | tr "\n" " "; echo; }
for i in $(seq 60); do grep -q registered $D/l2.log && break; sleep 1; done
sleep 3; echo "$(date +%T) before: $(W)"
bash $RIG link-down w2; echo "$(date +%T) link down"
sleep ${DOWN:-30}
echo "$(date +%T) during: $(W)"
ip netns exec jph1-w2 ss -tno state all dst 198.19.41.2 | head
kill -KILL $WPID; wait $WPID 2>/dev/null; echo "$(date +%T) worker killed"
sleep 1; ip netns exec jph1-w2 ss -tno state all dst 198.19.41.2 | head
bash $RIG link-up w2; echo "$(date +%T) link up"
for i in $(seq ${AFTER:-40}); do echo "$(date +%T) after: $(W)"; sleep 1; done
ip netns exec jph1-w2 ss -tno state all | head
grep -i "l2" $D/coord.log | tail -5
