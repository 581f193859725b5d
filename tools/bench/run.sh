#!/usr/bin/env bash
# tools/bench/run.sh — `make bench`: the reference etcd and metad on this
# machine, under the same workloads driven by metad-bench, in one table.
#
# Each server gets free loopback ports (never 2379/2380), a fresh data dir
# under $BUILD/bench-data (same medium for both) and the same quota. Phase A
# runs the throughput/latency workloads on both servers side by side (each
# workload in two rounds per server, etcd metad metad etcd: see pair).
# Phase B loads N keys into a fresh data dir, reads peak RSS and on-disk
# size, stops the server cleanly and times a restart until the first Range
# answers. Every server started here is killed on exit, whatever happens.
#
# Phase C starts a 3-member cluster of each (etcd's flags), side by side,
# and runs puts against the leader and linearizable ranges against a
# follower in the same rounds, then, one cluster after the other, loads
# the load phase's keys and times a new learner's catch-up. Every
# workload also reports the servers' own CPU time per request (utime+stime
# from /proc, all members summed): on this 2-core machine the load
# generator takes much of the CPU, which squeezes throughput ratios.
#
# Then the operational rows (ops_phases.sh): 1,000 heartbeating brokers,
# snapshot save with writes going on, the cost of scraping /metrics, and
# (metad only) the controllers' hand-over and failover at scale.
#
# Phase D (auth) runs put and range on one fresh server of each with auth
# off and on (a user whose role grants readwrite on the keys' prefix, simple
# token, as clientv3 sends it), in the order off on on off ..., so a drift
# of the shared machine's load weighs on both alike; it reports each
# server's on/off ratio.
#
# Env: BUILD (build dir, default build), BENCH_QUICK=1 (under 8 minutes),
#      ETCD (reference etcd binary, default /usr/bin/etcd),
#      BENCH_PHASES (default "a b c auth hb snap metrics ctl": which phases
#      run; e.g. BENCH_PHASES=auth for that row alone), AUTH_ROUNDS (off/on
#      pairs in phase D; default 2, quick 1), BENCH_ENGINE (metad-bench's
#      unary engine: h2, the default, or grpc; tools/bench/h2.h).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
METAD=$BUILD/metad
BENCH=$BUILD/metad-bench
ETCD=${ETCD:-/usr/bin/etcd}
QUICK=${BENCH_QUICK:-0}
ENGINE=${BENCH_ENGINE:-h2}
PY=/usr/bin/python3
QUOTA=$((8 * 1024 * 1024 * 1024))
WORK=$BUILD/bench-data
OUT=$WORK/results
RESULTS_MD=$BUILD/bench-results.md

for bin in "$METAD" "$BENCH" "$ETCD" "$PY"; do
	[[ -x $bin ]] || { echo "run.sh: missing $bin (build first: make build)" >&2; exit 1; }
done

if [[ $QUICK = 1 ]]; then
	DUR=4            # seconds per throughput workload (each also has a --total cap)
	PUT1_TOTAL=4000
	BIG_TOTAL=400000
	WL_TOTAL=300     # watch-latency puts at 100/s
	LOAD_KEYS=100000
	LOAD_CAP=60
	AUTH_ROUNDS=${AUTH_ROUNDS:-1}
else
	DUR=15
	PUT1_TOTAL=20000
	BIG_TOTAL=2000000
	WL_TOTAL=1000
	LOAD_KEYS=1000000
	LOAD_CAP=400
	AUTH_ROUNDS=${AUTH_ROUNDS:-2}
fi
# Phases a and c run each workload in two rounds of half its length (pair).
HALF_DUR=$(((DUR + 1) / 2))
HALF_TOTAL=$((BIG_TOTAL / 2))
PHASES=" ${BENCH_PHASES:-a b c auth hb snap metrics ctl} "
want() { [[ $PHASES = *" $1 "* ]]; }

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- servers
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local p
	while :; do
		p=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		[[ $p != 2379 && $p != 2380 ]] && { echo "$p"; return; }
	done
}

# server_bin KIND: the binary of etcd or metad.
server_bin() {
	if [[ $1 = etcd ]]; then echo "$ETCD"; else echo "$METAD"; fi
}

# start_server KIND DATADIR LOG: sets SPID and SPORT; does not wait.
start_server() {
	local kind=$1 dir=$2 logf=$3
	[[ -n ${SPORT:-} && -n ${PPORT:-} ]] || { SPORT=$(free_port); PPORT=$(free_port); }
	"$(server_bin "$kind")" --name n1 --data-dir "$dir" \
		--listen-client-urls "http://127.0.0.1:$SPORT" --advertise-client-urls "http://127.0.0.1:$SPORT" \
		--listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
		--initial-cluster "n1=http://127.0.0.1:$PPORT" --quota-backend-bytes "$QUOTA" \
		>>"$logf" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
}

# launch NAME: a server of $KIND on a fresh $WORK/$KIND-NAME, its log beside
# it; waits (60 s) until it answers and sets LAUNCH_MS to the time that took.
launch() {
	local dir=$WORK/$KIND-$1 logf=$WORK/$KIND-$1.log
	rm -rf "$dir" "$logf"
	SPORT= PPORT=
	T_LAUNCH=$(date +%s%N)
	start_server "$KIND" "$dir" "$logf"
	LAUNCH_MS=$(wait_answer "$SPORT" 60) || { log "$KIND did not start ($LAUNCH_MS): see $logf"; return 1; }
}

# wait_answer PORT DEADLINE_S: polls until a Range answers; prints the ms it took.
wait_answer() {
	local port=$1 deadline=$2 t0 now
	t0=$(date +%s%N)
	while :; do
		now=$(date +%s%N)
		if (( (now - t0) / 1000000000 >= deadline )); then
			echo "timeout"
			return 1
		fi
		kill -0 "$SPID" 2>/dev/null || { echo "exited"; return 1; }
		# Cheap check first: is anything listening yet?
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
			"$BENCH" range --endpoints "127.0.0.1:$port" --total 1 --timeout 2 --no-progress \
				--json >/dev/null 2>&1; then
			now=$(date +%s%N)
			echo $(( (now - T_LAUNCH) / 1000000 ))
			return 0
		fi
		sleep 0.01
	done
}

# stop_server: SIGTERM, wait (60 s) for a clean exit; returns 1 if it had to be killed.
stop_server() {
	local i
	kill -TERM "$SPID" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$SPID" 2>/dev/null || { wait "$SPID" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
	return 1
}

# ---------------------------------------------------------------- workloads
# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
cpu_ticks() {
	local pid total=0 t
	for pid in "$@"; do
		# Fields 14 and 15 of /proc/PID/stat, counted after the ")" that
		# ends the command name.
		t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# bench NAME ARGS...: runs metad-bench against $SPORT, stores its JSON in
# $OUT/$KIND-NAME.json and the servers' CPU ticks used meanwhile in
# $OUT/$KIND-NAME.cpu (servers: $SPIDS, or $SPID).
bench() {
	local name=$1
	shift
	local f=$OUT/$KIND-$name.json
	local pids=(${SPIDS:-$SPID}) c0
	log "  $KIND: $name"
	c0=$(cpu_ticks "${pids[@]}")
	"$BENCH" "$@" --engine "$ENGINE" --endpoints "127.0.0.1:$SPORT" --json --no-progress \
		>"$f" 2>"$f.err" || true
	echo $(( $(cpu_ticks "${pids[@]}") - c0 )) "$(getconf CLK_TCK)" >"$OUT/$KIND-$name.cpu"
	[[ -s $f ]] || echo '{"failed":true}' >"$f"
}

etcd_fsyncs() {
	curl -s "http://127.0.0.1:$SPORT/metrics" 2>/dev/null |
		awk '/^etcd_disk_wal_fsync_duration_seconds_count/ {print $2}'
}

# quiesce: the previous phase's data dir goes and its dirty pages reach the
# disk before the next server starts; otherwise their write-back competes
# with the next phase's fsyncs. When the phases ran one server after the
# other, metad's put with 1 client ran right after etcd's 1M-key load:
# 3,223 and 3,273 req/s in two runs without this, 3,524 with it.
quiesce() {
	rm -rf "$WORK"/*-a "$WORK"/*-b "$WORK"/*-c[0-9] "$WORK"/*-auth
	sync
}

# Phases a and c run etcd and metad side by side: both servers (or both
# clusters) are up, and each workload runs on them in turn, in two rounds of
# half the workload each, etcd metad metad etcd (metad etcd etcd metad for
# the next workload), so a change of the shared machine's speed weighs on
# both alike. Run one server after the other, minutes apart, the lone-client
# put gave metad 1.07-1.21x etcd in three full runs of 5 Dec 2026, where
# alternating runs in the same hours gave 1.42-1.80x: this machine's fsync
# and wake-up costs move by a third from one quarter-minute to the next.
declare -A KPORT KPIDS
PAIRS=0

# pair NAME ARGS...: `bench NAME.1` and `bench NAME.2` on each server
# (KPORT, KPIDS) in ABBA order, then one result per server
# (tools/bench/merge_rounds.py).
pair() {
	local name=$1 kind order
	shift
	PAIRS=$((PAIRS + 1))
	order="etcd metad metad etcd"
	((PAIRS % 2)) || order="metad etcd etcd metad"
	local -A n=()
	for kind in $order; do
		n[$kind]=$((${n[$kind]:-0} + 1))
		KIND=$kind SPORT=${KPORT[$kind]} SPIDS=${KPIDS[$kind]}
		bench "$name.${n[$kind]}" "$@"
	done
	SPIDS=
	for kind in etcd metad; do
		"$PY" "$ROOT/tools/bench/merge_rounds.py" "$OUT/$kind-$name"
	done
}

# start_pair PHASE: etcd and metad on fresh data dirs ($WORK/KIND-PHASE).
start_pair() {
	for KIND in etcd metad; do
		launch "$1" || return 1
		log "$KIND up on 127.0.0.1:$SPORT in $LAUNCH_MS ms"
		KPORT[$KIND]=$SPORT
		KPIDS[$KIND]=$SPID
	done
}

phase_a() {
	quiesce
	start_pair a || return 1
	local kv="--key-size 8 --val-size 256 --key-space-size 100000"
	local many="--clients 1000 --conns 100"
	pair put1 put $kv --sequential-keys --clients 1 --conns 1 --total $((PUT1_TOTAL / 2)) \
		--duration "$HALF_DUR"
	local f0
	f0=$(SPORT=${KPORT[etcd]} etcd_fsyncs)
	pair put1000 put $kv $many --total "$HALF_TOTAL" --duration "$HALF_DUR"
	echo "$f0 $(SPORT=${KPORT[etcd]} etcd_fsyncs)" >"$OUT/etcd-fsyncs"
	pair rangel range $many --consistency l --total "$HALF_TOTAL" --duration "$HALF_DUR"
	pair ranges range $many --consistency s --total "$HALF_TOTAL" --duration "$HALF_DUR"
	pair mixed txn-mixed $kv $many --rw-ratio 9 --total "$HALF_TOTAL" --duration "$HALF_DUR"
	pair wlat watch-latency --key-size 32 --val-size 32 --streams 10 --watchers-per-stream 10 \
		--rate 100 --total $((WL_TOTAL / 2)) --timeout 10 --watch-wait 3
	pair status status $many --total "$HALF_TOTAL" --duration "$HALF_DUR"
	for KIND in etcd metad; do
		SPID=${KPIDS[$KIND]}
		stop_server || log "$KIND: had to SIGKILL (no clean exit in 60 s)"
	done
	grep -a "write path" "$WORK/metad-a.log" | tail -1 >"$OUT/metad-writepath" || true
}

phase_b() {
	local dir=$WORK/$KIND-b logf=$WORK/$KIND-b.log t
	quiesce
	launch b || return 1
	log "  $KIND: load $LOAD_KEYS keys of 256 bytes"
	bench load put --key-size 16 --val-size 256 --sequential-keys --key-space-size "$LOAD_KEYS" \
		--total "$LOAD_KEYS" --clients 1000 --conns 100 --duration "$LOAD_CAP"
	awk '/^VmHWM/ {print $2}' "/proc/$SPID/status" >"$OUT/$KIND-hwm"
	local clean=1
	stop_server || clean=0
	du -sk "$dir" | awk '{print $1}' >"$OUT/$KIND-du"
	grep -a "write path" "$logf" | tail -1 >"$OUT/$KIND-writepath-load" || true
	# Same ports again, so nothing but the restart is measured.
	T_LAUNCH=$(date +%s%N)
	start_server "$KIND" "$dir" "$logf"
	t=$(wait_answer "$SPORT" 300) || t="failed:$t"
	echo "$t $clean" >"$OUT/$KIND-restart"
	log "  $KIND: restart to first answer: $t ms"
	stop_server || true
}

# status_field PORT FIELD: one number from the member's Status (etcdctl's JSON).
status_field() {
	ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$1" --command-timeout 2s endpoint status -w json |
		"$PY" -c 'import json,sys; print(int(json.load(sys.stdin)[0]["Status"].get(sys.argv[1], 0)))' "$2"
}

# catchup BIN LEADER_PORT SPEC: load LOAD_KEYS keys into the cluster, add a
# learner (etcdctl member add --learner) and time from its launch until it
# has applied the leader's raft index at the add (its /metrics). By then the
# leader's log was compacted behind its snapshots (etcd: every 100,000
# entries, 5,000 kept), so both send their store.
catchup() {
	local bin=$1 leader=$2 spec=$3 cport pport last t0
	log "  $KIND cluster: load $LOAD_KEYS keys of 256 bytes, then add a learner"
	SPORT=$leader bench c3load put --key-size 16 --val-size 256 --sequential-keys \
		--key-space-size "$LOAD_KEYS" --total "$LOAD_KEYS" --clients 1000 --conns 100 \
		--duration "$LOAD_CAP"
	cport=$(free_port)
	pport=$(free_port)
	ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$leader" member add c3 --learner \
		--peer-urls "http://127.0.0.1:$pport" >/dev/null || return 1
	# Caught up: applied what the leader had committed when it was added.
	last=$(status_field "$leader" raftIndex) || return 1
	t0=$(date +%s%N)
	"$bin" --name c3 --data-dir "$WORK/$KIND-c3" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$spec,c3=http://127.0.0.1:$pport" --initial-cluster-state existing \
		--initial-cluster-token "bench-$KIND" --quota-backend-bytes "$QUOTA" >>"$WORK/$KIND-c3.log" 2>&1 &
	PIDS+=("$!")
	SPIDS+="$! "
	# One poller process, not an etcdctl per poll (tools/bench/applied_wait.py).
	"$PY" "$ROOT/tools/bench/applied_wait.py" "$cport" "$last" "$t0" $((LOAD_CAP * 2)) \
		>"$OUT/$KIND-catchup" || { log "  $KIND: learner did not catch up"; return 1; }
	log "  $KIND: learner caught up with $LOAD_KEYS keys in $(cat "$OUT/$KIND-catchup") ms"
}

# start_cluster KIND: a 3-member cluster of KIND (etcd's flags) on fresh data
# dirs; sets KPIDS[KIND], LEADER[KIND], FOLLOWER[KIND] and SPEC[KIND].
declare -A LEADER FOLLOWER SPEC
start_cluster() {
	local kind=$1 i cports=() pports=() spec="" bin pids="" t st
	bin=$(server_bin "$kind")
	for i in 0 1 2; do
		cports+=("$(free_port)")
		pports+=("$(free_port)")
		spec+="${spec:+,}c$i=http://127.0.0.1:${pports[$i]}"
	done
	for i in 0 1 2; do
		"$bin" --name "c$i" --data-dir "$WORK/$kind-c$i" \
			--listen-client-urls "http://127.0.0.1:${cports[$i]}" \
			--advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
			--listen-peer-urls "http://127.0.0.1:${pports[$i]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
			--initial-cluster "$spec" --initial-cluster-token "bench-$kind" \
			--quota-backend-bytes "$QUOTA" >>"$WORK/$kind-c$i.log" 2>&1 &
		PIDS+=("$!")
		pids+="$! "
	done
	KPIDS[$kind]=$pids
	SPEC[$kind]=$spec
	LEADER[$kind]= FOLLOWER[$kind]=
	for i in 0 1 2; do
		SPID=$(echo $pids | cut -d' ' -f$((i + 1)))
		T_LAUNCH=$(date +%s%N)
		t=$(wait_answer "${cports[$i]}" 60) || { log "$kind cluster did not start ($t)"; return 1; }
	done
	# The leader is the member whose Status names itself.
	for i in 0 1 2; do
		st=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${cports[$i]}" endpoint status -w json 2>/dev/null |
			"$PY" -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; print(int(s["leader"]==s["header"]["member_id"]))')
		if [[ $st = 1 ]]; then LEADER[$kind]=${cports[$i]}; else FOLLOWER[$kind]=${cports[$i]}; fi
	done
	[[ -n ${LEADER[$kind]} && -n ${FOLLOWER[$kind]} ]] || { log "$kind cluster: no leader found"; return 1; }
	log "  $kind cluster: leader on ${LEADER[$kind]}, follower on ${FOLLOWER[$kind]}"
}

# stop_clusters KIND...: SIGTERM to every member, then wait for each.
stop_clusters() {
	local kind pid
	for kind in "$@"; do
		for pid in ${KPIDS[$kind]}; do kill -TERM "$pid" 2>/dev/null || true; done
	done
	for kind in "$@"; do
		for pid in ${KPIDS[$kind]}; do wait "$pid" 2>/dev/null || true; done
	done
}

# phase_c: a 3-member cluster of each, side by side (pair): puts to the
# leader, linearizable ranges on a follower, CPU summed over the members.
# Then the catch-up, on a fresh cluster of each in turn with nothing else
# running: measured beside the other cluster, just after it had loaded its
# 1M keys, metad's took 4,489 ms where it takes 2.2-2.9 s alone.
phase_c() {
	quiesce
	start_cluster etcd && start_cluster metad || { stop_clusters etcd metad; return 1; }
	local kv="--key-size 8 --val-size 256 --key-space-size 100000"
	local many="--clients 1000 --conns 100"
	KPORT[etcd]=${LEADER[etcd]} KPORT[metad]=${LEADER[metad]}
	pair c3put1000 put $kv $many --total "$HALF_TOTAL" --duration "$HALF_DUR"
	KPORT[etcd]=${FOLLOWER[etcd]} KPORT[metad]=${FOLLOWER[metad]}
	pair c3rangel range $many --consistency l --total "$HALF_TOTAL" --duration "$HALF_DUR"
	stop_clusters etcd metad
	for KIND in etcd metad; do
		quiesce
		start_cluster "$KIND" || { stop_clusters "$KIND"; continue; }
		SPIDS=${KPIDS[$KIND]}
		catchup "$(server_bin "$KIND")" "${LEADER[$KIND]}" "${SPEC[$KIND]}" || log "$KIND: catch-up not measured"
		KPIDS[$KIND]=$SPIDS
		stop_clusters "$KIND"
	done
	SPIDS=""
}

# phase_auth: put and range, auth off and on, on one fresh server. The
# user's role grants readwrite on /b/, the keys' prefix; root turns auth
# off between runs. Results: $OUT/$KIND-auth{off,on}-WORKLOAD-ROUND.json.
phase_auth() {
	fresh_server auth || return 1
	local logf=$WORK/$KIND-auth.log # fresh_server's
	local ctl=(etcdctl --endpoints "127.0.0.1:$SPORT" --command-timeout 30s)
	{
		ETCDCTL_API=3 "${ctl[@]}" user add root:rootpw &&
		ETCDCTL_API=3 "${ctl[@]}" user add bench:benchpw &&
		ETCDCTL_API=3 "${ctl[@]}" role add benchrw &&
		ETCDCTL_API=3 "${ctl[@]}" role grant-permission --prefix benchrw readwrite /b/ &&
		ETCDCTL_API=3 "${ctl[@]}" user grant-role bench benchrw
	} >>"$logf" 2>&1 || { log "$KIND: cannot set up users"; return 1; }
	local kv="--key-size 8 --val-size 256 --key-space-size 100000 --key-prefix /b/"
	local many="--clients 1000 --conns 100"
	# --user runs on gRPC core's client (h2.h): auth off must too, or the
	# on/off ratio would compare two clients.
	local ENGINE=grpc
	local r state order=""
	for ((r = 1; r <= AUTH_ROUNDS; r++)); do
		if ((r % 2)); then order+=" off:$r on:$r"; else order+=" on:$r off:$r"; fi
	done
	for state in $order; do
		local st=${state%:*} n=${state#*:} user=()
		if [[ $st = on ]]; then
			ETCDCTL_API=3 "${ctl[@]}" auth enable >>"$logf" 2>&1 ||
				{ log "$KIND: auth enable failed"; return 1; }
			user=(--user bench:benchpw)
		fi
		bench "auth$st-put-$n" put $kv $many "${user[@]}" --total "$BIG_TOTAL" --duration "$DUR"
		bench "auth$st-rangel-$n" range $many "${user[@]}" --key-prefix /b/ --consistency l \
			--total "$BIG_TOTAL" --duration "$DUR"
		bench "auth$st-ranges-$n" range $many "${user[@]}" --key-prefix /b/ --consistency s \
			--total "$BIG_TOTAL" --duration "$DUR"
		if [[ $st = on ]]; then
			ETCDCTL_API=3 "${ctl[@]}" --user root:rootpw auth disable >>"$logf" 2>&1 ||
				{ log "$KIND: auth disable failed"; return 1; }
		fi
	done
	stop_server || log "$KIND: had to SIGKILL (no clean exit in 60 s)"
}

mkdir -p "$OUT"
rm -f "$OUT"/*
T0=$(date +%s)
# shellcheck source=ops_phases.sh
. "$ROOT/tools/bench/ops_phases.sh"
want a && { log "== etcd and metad side by side: workloads (2 x ${HALF_DUR}s each)"; phase_a || true; }
want c && { log "== etcd and metad side by side: 3-member clusters"; phase_c || true; }
for KIND in etcd metad; do
	want b && { log "== $KIND: load, memory, disk, restart"; phase_b || true; }
	want auth && { log "== $KIND: auth off and on (${AUTH_ROUNDS} round(s), ${DUR}s each)"; phase_auth || true; }
	want hb && { log "== $KIND: 1,000 brokers heartbeating"; phase_hb || true; }
	want snap && { log "== $KIND: snapshot save with writes going on"; phase_snap || true; }
	want metrics && { log "== $KIND: /metrics scraped every second"; phase_metrics || true; }
done
KIND=metad
want ctl && { log "== metad: controllers at scale (metad-brokersim)"; phase_ctl || true; }

# The tool's own ceiling: the same status load against a server that does
# nothing (metad-bench serve-null), on the same machine.
want a && {
log "== tool ceiling: status against metad-bench serve-null"
quiesce
KIND=null SPORT=$(free_port)
"$BENCH" serve-null --endpoints "127.0.0.1:$SPORT" >"$WORK/null.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
T_LAUNCH=$(date +%s%N)
if wait_answer "$SPORT" 20 >/dev/null; then
	bench status status --clients 1000 --conns 100 --total "$BIG_TOTAL" --duration "$DUR"
fi
kill -INT "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
}

# ---------------------------------------------------------------- table
"$PY" - "$OUT" "$QUICK" "$LOAD_KEYS" "$(( $(date +%s) - T0 ))" "$SNAP_KEYS" "$PHASES" "$AUTH_ROUNDS" <<'EOF' | tee "$RESULTS_MD"
import json, os, re, sys
out, quick, load_keys, secs = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
snap_keys = int(sys.argv[5])
phases, auth_rounds = sys.argv[6].split(), int(sys.argv[7])

def load(kind, name):
    try:
        with open(os.path.join(out, f"{kind}-{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"failed": True}

def text(kind, name):
    try:
        with open(os.path.join(out, f"{kind}-{name}")) as f:
            return f.read().strip()
    except OSError:
        return ""

def err(j):
    if j.get("failed"):
        return "failed"
    if j.get("ok", 0) == 0:
        fe = j.get("first_error") or {}
        return "error: " + fe.get("code", "no answers")
    return None

rows = []
def row(label, e, m, better, fmt="{:.0f}"):
    if e in ("failed", "-") and m in ("failed", "-"):
        return   # a phase that did not run (BENCH_PHASES)
    def cell(v):
        return v if isinstance(v, str) else fmt.format(v)
    ratio = "-"
    if not isinstance(e, str) and not isinstance(m, str) and e:
        ratio = f"{m / e:.2f} ({better} is better)"
    rows.append((label, cell(e), cell(m), ratio))

def metric(j, path):
    if err(j):
        return err(j)
    v = j
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    return "-" if v is None else v

def errs(j):
    if j.get("failed") or not j.get("errors"):
        return ""
    fe = j.get("first_error") or {}
    return f"{j['errors']} errors ({fe.get('code')}: {fe.get('message')})"

def cpu_us(kind, name, j):
    """Servers' CPU per acknowledged request, in microseconds."""
    t = text(kind, name + ".cpu").split()
    try:
        ticks, hz = float(t[0]), float(t[1])
    except (IndexError, ValueError):
        return "-"
    if err(j) or not j.get("ok"):
        return "-"
    return ticks / hz * 1e6 / j["ok"]

def ops_rows(row, text, load, err, notes, snap_keys):
    """The rows of ops_phases.sh (absent phases give none)."""
    def nums(kind, name):
        try:
            return [float(x) for x in text(kind, name).split()]
        except ValueError:
            return []
    hb = {k: nums(k, "hb") for k in ("etcd", "metad")}
    if any(hb.values()):
        row("1,000 brokers heartbeating: 1,000 conns, a keep-alive per lease per 3 s "
            "(server CPU, % of a core)", *[v[0] if v else "-" for v in hb.values()], "lower",
            "{:.2f}")
    sn = {k: nums(k, "snap") for k in ("etcd", "metad")}
    if any(sn.values()):
        row(f"snapshot save of {snap_keys:,} keys while putting 1,000/s (ms)",
            *[v[0] if v else "-" for v in sn.values()], "lower")
        row(f"snapshot save of {snap_keys:,} keys while putting 1,000/s (keys/s)",
            *[snap_keys / v[0] * 1000 if v and v[0] else "-" for v in sn.values()], "higher")
        for k, v in sn.items():
            if len(v) == 3:
                notes.append(f"{k} snapshot: {v[2] / 2**20:.0f} MiB file, {v[1]:.0f} revisions "
                             f"written during the save")
    ms = {}
    for k in ("etcd", "metad"):
        plain = [load(k, f"mplain{i}") for i in (1, 2)]
        scrape = [load(k, f"mscrape{i}") for i in (1, 2)]
        if any(err(j) for j in plain + scrape):
            continue
        ms[k] = 100.0 * sum(j["rps"] for j in scrape) / sum(j["rps"] for j in plain)
    if ms:
        row("put, 1,000 clients, /metrics scraped every second (% of the rate without; "
            "runs in ABBA order)", ms.get("etcd", "-"), ms.get("metad", "-"), "higher", "{:.1f}")
        cpu = {k: nums(k, "mscrape") for k in ("etcd", "metad")}
        per = {k: v[0] / v[1] / v[2] if len(v) == 3 else None for k, v in cpu.items()}
        row("server CPU per /metrics scrape (ms)",
            *[p * 1000 if p is not None else "-" for p in per.values()], "lower", "{:.2f}")
        # What one scrape a second takes from the server's CPU under the put
        # load (the plain runs): a figure the machine's noise cannot hide,
        # where the throughput ratio above moves by tens of percent.
        share = {}
        for k, p in per.items():
            busy = []
            for i in (1, 2):
                t, j = nums(k, f"mplain{i}.cpu"), load(k, f"mplain{i}")
                if len(t) == 2 and not err(j) and j.get("seconds"):
                    busy.append(t[0] / t[1] / j["seconds"])
            share[k] = 100 * p / (sum(busy) / len(busy)) if p is not None and busy else "-"
        row("/metrics scraped every second: share of the server's CPU under that put load (%)",
            share["etcd"], share["metad"], "lower", "{:.3f}")
    line = re.compile(r"(\w+)=(\d+)")
    for name, label, field in (
            ("sessions", "sessions of a dead broker handed over, after detection", "session_handover_ms"),
            ("segments", "segment leaders of a dead storage node failed over, after detection",
             "segment_failover_ms")):
        sim = text("metad", name + ".sim").splitlines()
        if not sim:
            continue
        got = dict(line.findall(sim[-1]))
        n = re.search(r"(?:owns|leads) (\d+)", text("metad", name + ".sim.err"))
        label = f"controllers: {int(n.group(1)):,} {label} (ms)" if n else f"controllers: {label} (ms)"
        row(label, "-", float(got[field]) if field in got else "failed", "lower")
        if got.get("violations", "0") != "0" or got.get("double_actions", "0") != "0":
            notes.append(f"metad-brokersim {name}: {sim[-1]}")

workloads = [
    ("a", "put1", "put, 1 client"),
    ("a", "put1000", "put, 1,000 clients / 100 conns"),
    ("a", "rangel", "range linearizable, 1,000 clients"),
    ("a", "ranges", "range serializable, 1,000 clients"),
    ("a", "mixed", "txn-mixed 90/10 reads, 1,000 clients"),
    ("c", "c3put1000", "3 members: put to the leader, 1,000 clients"),
    ("c", "c3rangel", "3 members: range linearizable on a follower, 1,000 clients"),
]
notes = []
for phase, name, label in workloads:
    if phase not in phases:
        continue
    e, m = load("etcd", name), load("metad", name)
    row(label + " (req/s)", metric(e, ["rps"]), metric(m, ["rps"]), "higher")
    row(label + " p99 (ms)", metric(e, ["latency_ms", "p99"]), metric(m, ["latency_ms", "p99"]),
        "lower", "{:.2f}")
    row(label + " server CPU per request (us)", cpu_us("etcd", name, e), cpu_us("metad", name, m),
        "lower", "{:.1f}")
    for kind, j in (("etcd", e), ("metad", m)):
        if errs(j):
            notes.append(f"{kind} {name}: {errs(j)}")
if "a" in phases:
    e, m = load("etcd", "wlat"), load("metad", "wlat")
    row("watch-latency put->event p50 (ms)", metric(e, ["latency_ms", "p50"]),
        metric(m, ["latency_ms", "p50"]), "lower", "{:.2f}")
    row("watch-latency put->event p99 (ms)", metric(e, ["latency_ms", "p99"]),
        metric(m, ["latency_ms", "p99"]), "lower", "{:.2f}")
    for kind, j in (("etcd", e), ("metad", m)):
        if errs(j):
            notes.append(f"{kind} watch-latency: {errs(j)}")
if "b" in phases:
    e, m = load("etcd", "load"), load("metad", "load")
    row(f"load {load_keys:,} keys x 256 B (req/s)", metric(e, ["rps"]), metric(m, ["rps"]),
        "higher")
    for kind, j in (("etcd", e), ("metad", m)):
        if not j.get("failed") and j.get("ok", 0) < load_keys:
            notes.append(f"{kind} load: only {j.get('ok', 0)} of {load_keys} keys acknowledged")
        if errs(j):
            notes.append(f"{kind} load: {errs(j)}")

def num(kind, name, scale):
    t = text(kind, name).split()
    try:
        return float(t[0]) / scale
    except (IndexError, ValueError):
        return "-"

if "b" in phases:
    row("peak RSS after load (MiB)", num("etcd", "hwm", 1024), num("metad", "hwm", 1024), "lower")
    row("on-disk size after load (MiB)", num("etcd", "du", 1024), num("metad", "du", 1024),
        "lower")
    row("restart to first answer (ms)", num("etcd", "restart", 1), num("metad", "restart", 1),
        "lower")
    for kind in ("etcd", "metad"):
        t = text(kind, "restart").split()
        if len(t) > 1 and t[1] == "0":
            notes.append(f"{kind}: did not stop within 60 s of SIGTERM after the load (killed)")
if "c" in phases:
    row(f"3 members: new learner caught up with {load_keys:,} keys (ms)",
        num("etcd", "catchup", 1), num("metad", "catchup", 1), "lower")
ops_rows(row, text, load, err, notes, snap_keys)
if "a" in phases:
    e, m = load("etcd", "status"), load("metad", "status")
    row("status RPC, 1,000 clients (req/s)", metric(e, ["rps"]), metric(m, ["rps"]), "higher")
    j = load("null", "status")
    if not err(j):
        notes.insert(0, f"metad-bench's own ceiling on this machine: {j['rps']:.0f} req/s "
                     f"(status RPC, 1,000 clients / 100 conns, against `metad-bench serve-null`; "
                     f"client CPU {j.get('client_cpu_us_per_req', 0):.1f} us per request)")
mode = "BENCH_QUICK=1" if quick else "full"
if rows:
    print(f"## metad vs etcd 3.4 ({mode} run, {secs} s, one machine, same run)\n")
    print("| workload | etcd | metad | ratio metad/etcd |")
    print("|---|---:|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
wp = text("metad", "writepath")
if wp and "a" in phases:
    print(f"- metad write path, workloads phase: `{wp}`")
try:
    a, b = text("etcd", "fsyncs").split()
    j = load("etcd", "put1000")
    n = j.get("ok", 0)
    f = int(float(b) - float(a))
    if f > 0 and "a" in phases:
        print(f"- etcd, put with 1,000 clients: {n} puts in {f} WAL fsyncs ({n / f:.1f} per fsync)")
except ValueError:
    pass
wp = text("metad", "writepath-load")
if wp and "b" in phases:
    print(f"- metad write path, load phase: `{wp}`")

# Phase D: each server against itself, auth on over auth off (median of the
# rounds: one run slowed by the machine's other load does not move it).
def auth_mean(kind, st, name, what):
    vals = []
    for r in range(1, auth_rounds + 1):
        n = f"auth{st}-{name}-{r}"
        j = load(kind, n)
        if err(j):
            notes.append(f"{kind} {n}: {err(j)}")
            return "failed"
        if errs(j):
            notes.append(f"{kind} {n}: {errs(j)}")
        v = (j["rps"] if what == "rps" else j.get("client_cpu_us_per_req", "-")
             if what == "client" else cpu_us(kind, n, j))
        if isinstance(v, str):
            return v
        vals.append(v)
    vals.sort()
    h = len(vals) // 2
    return vals[h] if len(vals) % 2 else (vals[h - 1] + vals[h]) / 2

if "auth" in phases:
    print(f"\n## auth on vs off ({mode} run, {auth_rounds} off/on pair(s) per server, "
          f"order off on on off ..., 1,000 clients / 100 conns, medians)\n")
    print("Auth on: a user whose role grants readwrite on the keys' prefix, simple token "
          "in every request's metadata (one login per run). on/off below 1.00 is the "
          "cost of auth for throughput, above 1.00 for CPU per request. The load "
          "generator shares the cores: its own CPU per request (sending the token) "
          "weighs on the req/s of both servers alike.\n")
    print("| workload | etcd off | etcd on | etcd on/off | metad off | metad on | metad on/off |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, label in (("put", "put"), ("rangel", "range linearizable"),
                        ("ranges", "range serializable")):
        for what, unit, fmt in (("rps", "req/s", "{:.0f}"),
                                ("cpu", "server CPU per request, us", "{:.1f}"),
                                ("client", "metad-bench CPU per request, us", "{:.1f}")):
            cells = []
            for kind in ("etcd", "metad"):
                off, on = auth_mean(kind, "off", name, what), auth_mean(kind, "on", name, what)
                ratio = (f"{on / off:.3f}" if not isinstance(off, str) and
                         not isinstance(on, str) and off else "-")
                cells += [v if isinstance(v, str) else fmt.format(v) for v in (off, on)] + [ratio]
            print(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    print()
for n in notes:
    print(f"- {n}")
EOF
