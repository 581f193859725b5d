# tools/bench/ops_phases.sh — the operational rows of `make bench`, sourced by
# run.sh (its helpers: launch, start_server, wait_answer, stop_server, bench,
# cpu_ticks, quiesce, log; its settings: KIND, OUT, WORK, QUICK, PY).
#
#   phase_hb       1,000 brokers heartbeating: 1,000 connections, one lease
#                  and LeaseKeepAlive stream each, a keep-alive per lease
#                  every 3 s (the replaced design's period); the server's CPU
#                  over a steady window, as a share of one core.
#   phase_snap     `etcdctl snapshot save` of SNAP_KEYS keys while 16 clients
#                  put at 1,000/s (other keys, so the snapshot does not grow).
#   phase_metrics  puts from 1,000 clients without and with a /metrics scrape
#                  every second (ABBA order); and the server CPU of one scrape.
#   phase_ctl      metad only: metad-brokersim's hand-over of a dead broker's
#                  sessions and failover of a dead storage node's segments.

if [[ $QUICK = 1 ]]; then
	HB_WINDOW=10; SNAP_KEYS=100000; METRICS_DUR=5; CTL_SESSIONS=20000; CTL_SHARDS=4000
else
	HB_WINDOW=20; SNAP_KEYS=1000000; METRICS_DUR=10; CTL_SESSIONS=200000; CTL_SHARDS=40000
fi

# fresh_server NAME: a new server of $KIND on a fresh data dir; waits for it.
fresh_server() {
	quiesce
	SPIDS=
	launch "$1"
}

phase_hb() {
	fresh_server hb || return 1
	local c0 c1 t0 t1 bp
	"$BENCH" lease-keepalive --endpoints "127.0.0.1:$SPORT" --clients 1000 --conns 1000 \
		--rate 333 --ttl 30 --total 10000000 --duration $((HB_WINDOW + 12)) --json --no-progress \
		>"$OUT/$KIND-hb.json" 2>"$OUT/$KIND-hb.err" &
	bp=$!
	# Connections, grants and streams are set up in the first seconds:
	# measure after them, and stop before the streams end.
	sleep 8
	c0=$(cpu_ticks "$SPID"); t0=$(date +%s%N)
	sleep "$HB_WINDOW"
	c1=$(cpu_ticks "$SPID"); t1=$(date +%s%N)
	wait "$bp" || true
	"$PY" -c 'import sys; t, hz, ns = map(float, sys.argv[1:]); print("%.2f" % (100 * t / hz / (ns / 1e9)))' \
		$((c1 - c0)) "$(getconf CLK_TCK)" $((t1 - t0)) >"$OUT/$KIND-hb"
	log "  $KIND: 1,000 keep-alive streams: $(cat "$OUT/$KIND-hb")% of a core"
	stop_server || true
}

# revision PORT: the store's current revision.
revision() {
	ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$1" get nokey -w json |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'
}

phase_snap() {
	fresh_server snap || return 1
	log "  $KIND: load $SNAP_KEYS keys of 256 bytes"
	bench snapload put --key-size 16 --val-size 256 --sequential-keys --key-space-size "$SNAP_KEYS" \
		--total "$SNAP_KEYS" --clients 1000 --conns 100 --duration "$LOAD_CAP"
	"$BENCH" put --endpoints "127.0.0.1:$SPORT" --key-prefix w --key-size 16 --val-size 256 \
		--key-space-size 1000 --clients 16 --conns 4 --rate 1000 --total 10000000 --duration 600 \
		--no-progress >/dev/null 2>&1 &
	local bp=$! r0 r1 t0 t1 f=$WORK/$KIND-snap.db
	PIDS+=("$bp")
	sleep 2
	rm -f "$f"
	r0=$(revision "$SPORT")
	t0=$(date +%s%N)
	ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$SPORT" --command-timeout 600s \
		snapshot save "$f" >"$OUT/$KIND-snap.log" 2>&1 || log "  $KIND: snapshot save failed"
	t1=$(date +%s%N)
	r1=$(revision "$SPORT")
	kill "$bp" 2>/dev/null || true
	wait "$bp" 2>/dev/null || true
	echo $(( (t1 - t0) / 1000000 )) $((r1 - r0)) "$(stat -c %s "$f" 2>/dev/null || echo 0)" \
		>"$OUT/$KIND-snap"
	log "  $KIND: snapshot save of $SNAP_KEYS keys: $(cut -d' ' -f1 "$OUT/$KIND-snap") ms"
	rm -f "$f"
	stop_server || true
}

phase_metrics() {
	fresh_server metrics || return 1
	local kv="--key-size 8 --val-size 256 --key-space-size 100000" many="--clients 1000 --conns 100"
	local i sp c0
	bench mwarm put $kv $many --total 100000000 --duration "$METRICS_DUR"
	# plain, scraped, scraped, plain: a drift over the four runs (the store
	# growing, checkpoints) weighs on both sides alike.
	bench mplain1 put $kv $many --total 100000000 --duration "$METRICS_DUR"
	(while :; do curl -s "http://127.0.0.1:$SPORT/metrics" >/dev/null; sleep 1; done) &
	sp=$!
	for i in 1 2; do
		bench "mscrape$i" put $kv $many --total 100000000 --duration "$METRICS_DUR"
	done
	kill "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
	bench mplain2 put $kv $many --total 100000000 --duration "$METRICS_DUR"
	# One scrape's server CPU: 200 in a row on the idle server.
	c0=$(cpu_ticks "$SPID")
	for i in $(seq 200); do curl -s "http://127.0.0.1:$SPORT/metrics" >/dev/null; done
	echo $(( $(cpu_ticks "$SPID") - c0 )) "$(getconf CLK_TCK)" 200 >"$OUT/$KIND-mscrape"
	stop_server || true
}

# sim NAME ARGS...: metad-brokersim against $SPORT; its last line to $OUT.
sim() {
	local name=$1
	shift
	log "  $KIND: metad-brokersim $*"
	"$BUILD/metad-brokersim" --endpoints "127.0.0.1:$SPORT" "$@" \
		>"$OUT/$KIND-$name.sim" 2>"$OUT/$KIND-$name.sim.err" || log "  $KIND: $name: violations"
	tail -1 "$OUT/$KIND-$name.sim" >&2
}

phase_ctl() {
	fresh_server ctl1 || return 1
	sim sessions --brokers 2 --sessions "$CTL_SESSIONS" --kill-brokers 1 --ttl 5 --expiry 30 \
		--storage-nodes 0 --kill-storage 0 --shards 0
	stop_server || true
	fresh_server ctl2 || return 1
	sim segments --storage-nodes 4 --shards "$CTL_SHARDS" --kill-storage 1 --ttl 5 \
		--brokers 1 --kill-brokers 0 --sessions 0
	stop_server || true
}
