/*
 * core/peer_internal.h — what peer.c, peer_server.c and peer_client.c share.
 *
 * Threads: the process's polling queue and its one thread (core/poller.h)
 * carry the incoming streams (so that thread runs the recv callback) and the
 * outgoing streams' completions; a thread of the transport's own re-dials;
 * snapshot and HashKV calls have a non-polling queue and a thread of their
 * own.
 *
 * Locking: one mutex, t->mu, guards the member table, every send queue and
 * every outgoing stream's state, and every grpc_call_start_batch on an
 * outgoing call (gRPC wants start_batch serialised per call; peer_send
 * starts sends from the caller's thread). Incoming calls are touched only by
 * the polling thread and need no lock, except for the live count.
 */
#ifndef METAD_CORE_PEER_INTERNAL_H
#define METAD_CORE_PEER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include <grpc/grpc.h>

#include "core/log.h" /* core_log */
#include "core/peer.h"
#include "core/poller.h" /* struct core_tag */

#define PEER_METHOD "/metadpeer.Raft/Stream"
/* Server streaming: a snapshot file, in chunks (peer_snap.c). */
#define PEER_SNAPSHOT_METHOD "/metadpeer.Raft/Snapshot"
/* Unary: the member list (a member joining an existing cluster asks). */
#define PEER_MEMBERS_METHOD "/metadpeer.Raft/Members"
/* Unary: HashKV for the corruption checks (peer_hash.c). */
#define PEER_HASH_METHOD "/metadpeer.Raft/HashKV"
/* Initial metadata of a stream: sender's cluster and member id, in hex. */
#define PEER_MD_CLUSTER "x-metad-cluster-id"
#define PEER_MD_FROM "x-metad-from"
/* The receiver's initial metadata carries this when it took the stream, so
 * the sender can tell an accepted stream from one about to be refused. */
#define PEER_MD_ACCEPTED "x-metad-accepted"
#define PEER_ERR_CLUSTER_MISMATCH "request cluster ID mismatch" /* etcd's words */
#define PEER_ERR_SAN "the peer's address is not in its certificate"

#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 1000
#define PEER_REFUSAL_LOG_MS 10000

/* A peer that stops answering (SIGSTOP, a partition) is noticed after one
 * keepalive interval plus its timeout, about 4 s; a TCP reset at once. Both
 * sides ping, so both notice. */
#define PEER_KEEPALIVE_MS 2000
#define PEER_KEEPALIVE_TIMEOUT_MS 2000

#define PEER_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Every completion-queue tag of the transport starts with this. */
struct peer_out;

struct peer_transport {
	/* Fixed after peer_start. */
	peer_recv_fn recv;
	void *arg;
	uint64_t self_id;
	uint64_t cluster_id;
	size_t max_msg_bytes;
	size_t queue_bytes;
	int keepalive_timeout_ms;
	char *cert_pem; /* NULL: no certificate of ours */
	char *key_pem;
	char *ca_pem; /* NULL: no CA to verify peers with */
	bool client_cert_auth;
	struct peer_tls tls; /* the options (file names and checks) */
	grpc_server *server;
	void *method; /* grpc_server_register_method handle */
	void *members_method;
	uint8_t *(*members)(void *arg, size_t *len); /* peer_config.members */
	int (*snapshot)(void *arg, const char *have_id, char **path); /* peer_config.snapshot */
	int (*snapshot_state)(void *arg, const char *path, uint64_t *size); /* ... _state */
	void *snap_method;
	void *hash_method; /* served on snap_cq (peer_hash.c) */
	int (*hash)(void *arg, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
		    char *err, size_t errlen); /* peer_config.hash */
	grpc_completion_queue *snap_cq; /* snapshot calls: their own thread, not polling */
	pthread_t snap_thread;
	bool snap_started;
	grpc_completion_queue *cq; /* the polling queue (core/poller.h), not ours */
	grpc_completion_queue *shutdown_cq;
	pthread_t thread; /* re-dials */
	bool started;
	int *ports;
	size_t n_ports;

	/* Polling thread only: refusals are logged at most every PEER_REFUSAL_LOG_MS
	 * (a member of another cluster re-dials every second, forever). */
	int64_t refusal_logged_ms;
	unsigned long refusals_quiet;

	pthread_mutex_t mu;
	pthread_cond_t idle; /* live_in + live_out reached 0 */
	pthread_cond_t timer_cv; /* a re-dial is due sooner, or stopping */
	struct peer_out *peers;
	long live_in;  /* incoming call structs alive (armed or serving) */
	long live_out; /* outgoing call structs alive */
	bool stopping;
	int64_t next_due_ms; /* earliest re-dial time, 0: none */
};

/* A hex number from metadata key (the ids a stream carries). */
bool peer_md_hex(const grpc_metadata_array *md, const char *key, uint64_t *out);

/* Monotonic milliseconds. */
int64_t peer_now_ms(void);

/* "http://h:p" -> "h:p" with *tls = false; https -> *tls = true. -1 if bad. */
int peer_url_addr(const char *url, char *addr, size_t len, bool *tls);

/* Credentials for a channel to url (ownership to caller), NULL on error. */
grpc_channel_credentials *peer_channel_creds(struct peer_transport *t, bool tls);

/* A byte buffer's bytes, malloc'ed (at least 1 byte; NULL: none left). */
uint8_t *peer_buffer_bytes(grpc_byte_buffer *bb, size_t *len);
/* A channel of its own to the member at url, for a call (peer_unary.c);
 * NULL with err filled when the URL is bad or no channel could be made. */
grpc_channel *peer_dial(struct peer_transport *t, const char *url, const grpc_channel_args *args,
			char *err, size_t errlen);
/* Release a call made on such a channel, its queue (every event plucked)
 * and the channel. call may be NULL. */
void peer_hang_up(grpc_call *call, grpc_completion_queue *cq, grpc_channel *ch);
/*
 * One blocking unary call of method to the member at url (peer_unary.c), on
 * a channel of its own, until timeout_ms or *stop (NULL: none). 0 with *buf
 * (malloc'ed); -1 when the call failed (*status, and err the server's
 * details or "no answer"); -2 when no call was made (err says why).
 */
int peer_unary(struct peer_transport *t, const char *url, const char *method, const uint8_t *req,
	       size_t len, int64_t timeout_ms, const _Atomic bool *stop, uint8_t **buf,
	       size_t *buf_len, grpc_status_code *status, char *err, size_t errlen);

/* Count one more incoming call struct about to be armed; false (nothing
 * counted) when the transport is stopping and none may be armed. */
bool peer_live_in_add(struct peer_transport *t);

/* Count one call struct gone; wakes peer_stop at zero. Caller holds mu. */
void peer_live_drop_locked(struct peer_transport *t, long *counter);

/* peer_tls.c: read the certificate files of tls into t (freed by peer_stop). */
int peer_load_tls(struct peer_transport *t, const struct peer_tls *tls, char *err, size_t errlen);
grpc_server_credentials *peer_server_creds(struct peer_transport *t);
/* etcd's check of an incoming call's client certificate (unless
 * --experimental-peer-skip-client-san-verification): with IP or DNS SANs,
 * the caller's address must be one of them (a DNS one by reverse lookup). */
bool peer_call_san_ok(const struct peer_transport *t, grpc_call *call);
/* The same check for the polling thread, which must not wait on DNS (every
 * peer's messages go through it): 1 or 0 when decided at once; -1 when a
 * reverse lookup is needed, which runs on a thread of its own that then
 * stores the verdict in *ok and starts an empty batch on call with tag
 * (completed on the call's queue). Count that batch before calling. */
int peer_call_san_ok_async(const struct peer_transport *t, grpc_call *call, bool *ok,
			   struct core_tag *tag);

/* peer_members.c: keep one Members request_call armed (polling thread, or peer_start). */
void peer_members_arm(struct peer_transport *t);

/* peer_hash.c: keep one HashKV request_call armed (snapshot thread). */
void peer_hash_arm(struct peer_transport *t);

/* peer_snap.c: keep one Snapshot request_call armed; the thread that
 * serves them (files are made and read there, not on the polling thread). */
void peer_snap_arm(struct peer_transport *t);
void *peer_snap_main(void *arg);

/* peer_server.c: keep one request_call armed (polling thread, or peer_start). */
void peer_server_arm(struct peer_transport *t);

/* peer_client.c */
/* Start due re-dials; returns the next due time (0: none). Caller holds mu. */
int64_t peer_client_timers_locked(struct peer_transport *t, int64_t now);
/* Cancel every outgoing stream; no re-dial after. Caller holds mu. */
void peer_client_cancel_all_locked(struct peer_transport *t);
/* A stream from member id was accepted: re-dial it now if ours is down. */
void peer_client_heard(struct peer_transport *t, uint64_t id);
/* Free every member (once no call of the transport is left). */
void peer_client_free_all(struct peer_transport *t);

#endif
