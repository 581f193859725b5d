/*
 * tools/bench/wscan.h — reading a packed etcdserverpb.WatchResponse in
 * place, without unpacking it.
 *
 * The watch benchmark receives millions of events per second; unpacking each
 * response with protobuf-c (an allocation per event and per key-value) made
 * metad-bench, not the server, the bottleneck. The scanner walks the wire
 * format once and hands each event's type and value to a callback.
 */
#ifndef METAD_BENCH_WSCAN_H
#define METAD_BENCH_WSCAN_H

#include <stddef.h>
#include <stdint.h>

struct bench_wscan {
	int created, canceled, fragment;
	int64_t watch_id, compact_revision;
	const uint8_t *reason; /* cancel_reason, not NUL-terminated */
	size_t reason_len;
	size_t n_events;
};

/* Called per event: type 0 = PUT, 1 = DELETE; value points into the buffer. */
typedef void (*bench_wscan_event_fn)(void *arg, int type, const uint8_t *value, size_t len);

/* Scans p[0..len) into *out, calling on_event (may be NULL) per event.
 * Returns 0, or -1 when the bytes are not a well-formed WatchResponse. */
int bench_wscan(const uint8_t *p, size_t len, struct bench_wscan *out, bench_wscan_event_fn on_event,
		void *arg);

#endif
