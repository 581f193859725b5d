/*
 * etcdapi/stream.h — a streaming call (Watch, LeaseKeepAlive, Observe) as an
 * object with one RECV armed at a time, a FIFO of outgoing messages with one
 * SEND in flight, and a reference count.
 *
 * Messages may be queued from any thread (the watch hub, the writer's
 * callbacks): every grpc_call_start_batch on the call happens under the
 * stream's lock, as grpc.h requires external synchronisation. Completions
 * arrive on the call's own CQ thread. The object lives until its last
 * reference is gone: one per outstanding batch plus the owner's, dropped
 * with api_stream_unref.
 */
#ifndef METAD_ETCDAPI_STREAM_H
#define METAD_ETCDAPI_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcdapi/call.h"

struct api_stream;

struct api_stream_ops {
	/* A client message (bytes borrowed for the call). Return true to arm
	 * the next RECV now, false to pause (api_stream_recv_resume later).
	 * NULL for a stream opened without recv (server streaming). */
	bool (*recv)(struct api_stream *st, const uint8_t *data, size_t len);
	/* Nothing more will be received: half-close (eof = true), or the call
	 * failed / was cancelled (eof = false). Called once. */
	void (*recv_end)(struct api_stream *st, bool eof);
	/* msgs queued messages of len bytes in all have been handed to the
	 * transport (or dropped because the call ended). May be NULL. */
	void (*sent)(struct api_stream *st, size_t len, size_t msgs);
	/* The last reference is gone; free the owner's state. May be NULL. */
	void (*release)(struct api_stream *st);
	/* The call outlives the client's half-close (etcd's Watch keeps
	 * sending): recv_end then comes only when the call is over, eof false. */
	bool outlives_half_close;
};

struct api_stream_msg;

struct api_stream_tag {
	struct core_tag tag;
	struct api_stream *st;
};

struct api_stream {
	struct api_call *call; /* owned: freed with the stream */
	const struct api_stream_ops *ops;
	void *owner;
	pthread_mutex_t mu;
	int refs;
	struct api_stream_tag recv_tag, send_tag, close_tag, status_tag;
	grpc_byte_buffer *recv_buf;
	bool recv_armed;
	bool recv_done;  /* no more RECV will be armed */
	bool recv_ended; /* recv_end was called */
	bool closed;     /* RECV_CLOSE_ON_SERVER completed: the call is over */
	bool finishing;  /* status requested */
	bool status_sent;
	bool status_out; /* the status went to the client (not cut off first) */
	grpc_status_code status;
	char *status_msg;
	grpc_slice status_slice;
	int cancelled;
	struct api_stream_msg *head, *tail; /* queued, not yet sent */
	struct api_stream_msg *inflight;
	size_t queued_bytes;
	struct api_stream *all_prev, *all_next; /* registry of live streams */
	bool leader_required; /* opened with hasleader: ended when leaderless */
};

/* Take over call (a streaming method's call, see call.h) and start it:
 * initial metadata, the close watcher and, if recv, the first RECV.
 * Returns NULL (call finished with an error) when out of memory. The
 * caller holds one reference. */
struct api_stream *api_stream_open(struct api_call *call, const struct api_stream_ops *ops,
				   void *owner, bool recv);
/* Queue a packed message (copied). Dropped silently once the call ended. */
void api_stream_send(struct api_stream *st, const uint8_t *data, size_t len);
/* Queue msg packed. */
void api_stream_send_msg(struct api_stream *st, const ProtobufCMessage *msg);
/* Send the status after the queued messages (once; later calls ignored). */
void api_stream_finish(struct api_stream *st, grpc_status_code code, const char *msg);
/* A recv_end for streams that have nothing of their own to stop: end the
 * call with OK and drop the handler's reference (LeaseKeepAlive, Health). */
void api_stream_end_ok(struct api_stream *st, bool eof);
/* Arm the next RECV after a recv callback returned false. */
void api_stream_recv_resume(struct api_stream *st);
/* Bytes queued and in flight. */
size_t api_stream_queued(struct api_stream *st);
/* Server shutdown: end every live stream (and any opened later) with
 * UNAVAILABLE so gRPC's shutdown does not wait for them. */
void api_stream_shutdown_all(void);
/* No leader for three election timeouts: end every stream opened with
 * hasleader, as etcd's monitorLeader cancels them (etcd: no leader). */
void api_stream_end_leaderless(void);
void api_stream_ref(struct api_stream *st);
void api_stream_unref(struct api_stream *st);

#endif
