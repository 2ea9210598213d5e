#!/bin/bash
# A throw-away single-node Ceph RGW (S3) on 127.0.0.1 for tests: one mon, one memstore OSD and
# radosgw, started directly (no systemd, no mgr), auth "none" inside the cluster, S3 user
# testaccess/testsecret. Adapted from shared/spec/test-servers.md §1a: the mon port is a
# parameter so two clusters (parallel test files) can run side by side, and every daemon's pid is
# recorded before anything can fail, so "stop" always finds them.
#
# needs: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd   (Debian 12: 16.2.15)
# usage: ceph-s3.sh start DIR S3_PORT MON_PORT   |   ceph-s3.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}
D=${2:?dir}

stop() {
  local pids
  pids=$(cat "$D"/run/*.pid 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 10); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
  # radosgw can hang for up to 120 s in shutdown (lifecycle lock); the data is throw-away
  kill -KILL $pids 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

PORT=${3:-7480}
MON_PORT=${4:-3300}
t0=$(date +%s%N)
ts() { echo "[$(( ($(date +%s%N) - t0) / 1000000 )) ms] $*"; }
# a failed start must not leave daemons behind
trap 'rc=$?; [ $rc = 0 ] || { stop; echo "ceph-s3: start failed, see $D/log" >&2; }' EXIT

# wait_for CMD... : retry a probe for at most 30 s
wait_for() {
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "ceph-s3: timed out waiting for: $*" >&2
  return 1
}

rm -rf "$D"
mkdir -p "$D"/{run,log,mon,osd,rgw}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# with auth none the default "secure" messenger mode cannot work (radosgw loops on -13)
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms cluster mode = crc
ms service mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
# the ratios must be ordered nearfull < backfillfull < full
mon osd nearfull ratio = .98
mon osd backfillfull ratio = .985
mon osd full ratio = .99
osd failsafe full ratio = .995
osd crush chooseleaf type = 0
# pool/osdmap commits every 0.1 s instead of 1 s: start-up 12.9 s -> 2.6 s
paxos propose interval = 0.1
paxos min wait = 0.01
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
mon data = $D/mon/\$name
osd data = $D/osd/\$name
keyring = $D/keyring
osd objectstore = memstore
# memstore keeps every object in the OSD's RAM; this caps it
memstore device bytes = 3221225472
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw]
# tcp_nodelay=1: without it every GET with a body costs +40 ms (Nagle + delayed ACK)
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $D/rgw
rgw dns name = localhost
rgw enable usage log = false
CONF
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$D/ceph.conf" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -c "$D/ceph.conf" -i a
C="ceph -c $D/ceph.conf --connect-timeout 10"
wait_for $C mon stat
ts "mon up"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ID=$($C osd new "$OSD_UUID")
mkdir -p "$D/osd/osd.$ID"
ceph-osd -c "$D/ceph.conf" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.log" 2>&1
ceph-osd -c "$D/ceph.conf" -i "$ID" 2>>"$D/log/osd-stderr.log"
osd_up() { $C osd stat 2>/dev/null | grep -q '1 up'; }
wait_for osd_up
ts "osd up"
radosgw -c "$D/ceph.conf" -n client.rgw
wait_for curl -s -o /dev/null "http://127.0.0.1:$PORT/"
ts "radosgw answering"
radosgw-admin -c "$D/ceph.conf" user create --uid=test --display-name=test \
  --access-key=testaccess --secret-key=testsecret >/dev/null
# warm-up: the first bucket/object creates the index and data pools; do it now, not inside a test
S="curl -sf -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 -u testaccess:testsecret -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
$S -X PUT "http://127.0.0.1:$PORT/warmup" && $S -X PUT --data-binary x "http://127.0.0.1:$PORT/warmup/x"
$S -X DELETE "http://127.0.0.1:$PORT/warmup/x" && $S -X DELETE "http://127.0.0.1:$PORT/warmup"
ts "S3 ready on http://127.0.0.1:$PORT (testaccess/testsecret)"
