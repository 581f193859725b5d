/*
 * core/peer.h — the peer transport: Raft messages between members.
 *
 * A metad-internal gRPC service on --listen-peer-urls. Every member keeps one
 * long-lived outgoing stream to each other member and sends its messages
 * down it in order; what arrives on incoming streams is handed to the node
 * driver through the recv callback. Payloads are opaque here: the node
 * encodes and decodes them (raft_msg_encode / raft_msg_decode, nanopb).
 *
 * Members are always metad, so the protocol is ours (no etcd peer
 * compatibility). A stream carries the sender's cluster id and member id in
 * its metadata; a receiver refuses a stream from another cluster.
 *
 * Sending never blocks the caller: each peer has a bounded queue; when it is
 * full the message is dropped (Raft retransmits). A broken stream is
 * re-dialled with back-off. Thread-safe.
 */
#ifndef METAD_CORE_PEER_H
#define METAD_CORE_PEER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct peer_tls {
	const char *cert_file; /* --peer-cert-file (NULL: plaintext unless https) */
	const char *key_file;  /* --peer-key-file */
	const char *ca_file;   /* --peer-trusted-ca-file */
	bool client_cert_auth; /* --peer-client-cert-auth */
	bool self_signed;      /* --peer-auto-tls made cert_file: peers' are not verified */
	const char *crl_dir;   /* --peer-crl-file as a directory of hashed CRLs, or NULL */
	const char *allowed_cn;       /* --peer-cert-allowed-cn */
	const char *allowed_hostname; /* --peer-cert-allowed-hostname */
	bool skip_client_san;  /* --experimental-peer-skip-client-san-verification */
};

struct peer_config {
	const char *const *listen_urls; /* --listen-peer-urls (http:// or https://) */
	size_t n_listen_urls;
	struct peer_tls tls;
	uint64_t self_id;
	uint64_t cluster_id;
	size_t max_msg_bytes;   /* largest payload accepted; 0 = 64 MiB */
	size_t queue_bytes;     /* per-peer send queue bound; 0 = 16 MiB */
	/* How long a keepalive ping may go unanswered before the stream is
	 * dropped; 0 = PEER_KEEPALIVE_TIMEOUT_MS (2 s). Tests moving hundreds
	 * of MiB through one polling thread under sanitizers raise it. */
	int keepalive_timeout_ms;
	/* Answers the Members call of a joining member: a packed
	 * etcdserverpb.MemberListResponse (header.cluster_id set), malloc'ed;
	 * called on the receive thread. NULL: the call is refused. */
	uint8_t *(*members)(void *arg, size_t *len);
	/* Answers a member's snapshot fetch: the file to stream, for a
	 * fetcher that holds a part of the file named have_id ("" if none):
	 * 0 with *path malloc'ed, or -1 to refuse. Called on the transport's
	 * snapshot thread ("metad-peer-snap"), which may take its time (the
	 * file may be made first); the file is opened before the next call.
	 * NULL: fetches are refused. */
	int (*snapshot)(void *arg, const char *have_id, char **path);
	/* Answers a member's HashKV call (peer_hash.c): req is borrowed; 0
	 * with *resp malloc'ed, or -1 with the refusal's message in err.
	 * Called on the snapshot thread. NULL: the call is refused. */
	int (*hash)(void *arg, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
		    char *err, size_t errlen);
	/* How far the file at path (as snapshot gave it) has got: 1 whole,
	 * with *size its size; 0 still being written, *size so far (what is
	 * there is streamed, and the rest as it comes); -1 it never will be.
	 * NULL: every file is whole. */
	int (*snapshot_state)(void *arg, const char *path, uint64_t *size);
	/* The process's polling queue and thread (core/poller.h): required. */
	struct core_poller *poller;
};

/* One received payload (borrowed for the call), from transport threads.
 *
 * Added: every call comes from the process's polling thread ("metad-cq",
 * core/poller.h), so calls never overlap, and payloads from one sender
 * arrive in the order that sender queued them on one stream (after a
 * re-dial a few of the old stream's last messages may interleave with or
 * follow the new one's; Raft tolerates that). Keep it quick: the same thread
 * completes this member's sends and serves the client API, so a slow
 * callback holds up all of them (and the senders' queues fill and drop).
 * The callback may call peer_send, peer_connected, peer_set and peer_remove;
 * it must not call peer_stop. */
typedef void (*peer_recv_fn)(void *arg, uint64_t from, const uint8_t *data, size_t len);

struct peer_transport;

/* Listen and start the transport's threads. Errors: -1 with err filled
 * (bad URL, port taken, unreadable certificate).
 *
 * Added: cfg and its strings are borrowed for the call only (certificates
 * are read into memory here). Threads: the polling one of cfg->poller
 * (incoming and outgoing streams, recv), "metad-peer" (re-dials) and one
 * for snapshot and HashKV calls. */
int peer_start(const struct peer_config *cfg, peer_recv_fn recv, void *arg,
	       struct peer_transport **out, char *err, size_t errlen);

/* Add a member or replace its URLs (advertised peer URLs, http(s)://).
 *
 * Added: urls are copied. The same URLs again change nothing; new ones end
 * the current stream and re-dial. Streams go to the first URL, and to the
 * next when a stream cannot be established. Returns -1 for a URL that is
 * not http(s)://host:port, out of memory, or a stopping transport. */
int peer_set(struct peer_transport *t, uint64_t id, const char *const *urls, size_t n);
/* Forget a member: its stream closes, its queue is dropped. */
void peer_remove(struct peer_transport *t, uint64_t id);

/* Queue one payload for member id; the transport copies data. Returns false
 * when it was dropped (unknown member, queue full, stopping; added: larger
 * than max_msg_bytes). Payloads queue while the stream is being dialled. */
bool peer_send(struct peer_transport *t, uint64_t id, const uint8_t *data, size_t len);

/* Whether the outgoing stream to id is currently established (the
 * receiver accepted it: same cluster, TLS verified both ways). */
bool peer_connected(struct peer_transport *t, uint64_t id);

/* A member started with --initial-cluster-state existing asks the members
 * at urls (their peer URLs, tried in turn) for the member list, as etcd
 * fetches it from remote peers. *buf (malloc'ed, caller frees) is what
 * peer_config.members answered. Errors: -1 with err filled. */
int peer_fetch_members(const struct peer_tls *tls, const char *const *urls, size_t n,
		       int64_t timeout_ms, uint8_t **buf, size_t *len, char *err, size_t errlen);

/*
 * Each chunk of a fetched snapshot, in order from off 0; a fetch that
 * starts again (the next URL, after a broken transfer) comes back to off 0.
 * Non-zero stops the fetch.
 */
typedef int (*peer_snap_sink)(void *arg, uint64_t off, const void *data, size_t len);

/*
 * Fetch a snapshot file from the member at urls (tried in turn), on a
 * stream of its own, blocking, handing each chunk to sink; nothing is
 * written to disk here. Gives up after idle_ms without a chunk, or when
 * *stop turns true. Returns 0 when the whole file went to the sink, else
 * -1 with err.
 */
int peer_fetch_snapshot(struct peer_transport *t, const char *const *urls, size_t n,
			int64_t idle_ms, const _Atomic bool *stop, peer_snap_sink sink, void *sink_arg,
			char *err, size_t errlen);

/* Call HashKV on the member at url with payload req, blocking up to
 * timeout_ms or until *stop turns true (stop may be NULL): 0 with *buf
 * (malloc'ed) what its peer_config.hash answered, or -1 with err (the
 * member's refusal message, or why it did not answer). */
int peer_fetch_hash(struct peer_transport *t, const char *url, const uint8_t *req, size_t len,
		    int64_t timeout_ms, const _Atomic bool *stop, uint8_t **buf, size_t *buf_len,
		    char *err, size_t errlen);

/* How long (ms) the outgoing stream to id has been established without a
 * break; -1 when it is not (etcd's transport ActiveSince). */
int64_t peer_connected_for_ms(struct peer_transport *t, uint64_t id);

/* The port bound for listen_urls[i] (useful with port 0), 0 if none. */
int peer_listen_port(const struct peer_transport *t, size_t i);

/* Stop: close streams, stop listening, join threads. NULL is allowed.
 *
 * Added: recv may still be running while peer_stop is in progress; once it
 * returns recv is never called again, so arg must stay valid until then.
 * Queued, unsent payloads are dropped. Other calls on t must have returned
 * before peer_stop starts and must not follow it. */
void peer_stop(struct peer_transport *t);

#endif
