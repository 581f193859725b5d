/*
 * tools/bench/opts.h — command line of metad-bench.
 *
 * The vocabulary is etcd's tools/benchmark (same option names and meanings
 * where they exist), so a command written for one works for the other.
 */
#ifndef METAD_BENCH_OPTS_H
#define METAD_BENCH_OPTS_H

#include <stdint.h>

#define BENCH_MAX_ENDPOINTS 16

struct bench_opts {
	const char *cmd;                 /* subcommand: put, range, ... */
	char *args[2];                   /* positional arguments after it (range key [end]) */
	int nargs;

	char *endpoints[BENCH_MAX_ENDPOINTS]; /* "host:port" targets, loopback only; owned */
	int tls[BENCH_MAX_ENDPOINTS];         /* 1 when given as https:// */
	int n_endpoints;
	int conns;                       /* gRPC channels (TCP connections) */
	int clients;                     /* concurrent in-flight requests */
	int threads;                     /* completion-queue threads; 0: automatic */
	uint64_t total;                  /* requests to send (0: only --duration bounds the run) */
	double duration;                 /* seconds; 0: only --total bounds the run */
	double rate;                     /* requests per second over all clients; 0: no limit */
	double timeout;                  /* per-request deadline, seconds */

	int key_size, val_size;
	uint64_t key_space;              /* keys are 0 .. key_space-1 */
	int sequential;                  /* key = request number % key_space, not random */
	const char *key_prefix;          /* counted inside key_size */

	const char *cacert, *cert, *key; /* TLS files (PEM) */
	const char *user;                /* "name:password": log in, send the token (auth.h) */
	const char *token;               /* send this token, no login */
	int json;                        /* one JSON object on stdout, nothing else */
	int progress;                    /* 1: bar when stdout is a terminal; 0: never */
	int reply_thread;                /* serve-null: answer from a second thread */
	int engine_grpc;                 /* --engine grpc: unary calls on gRPC core (h2.h) */

	char consistency;                /* 'l' linearizable, 's' serializable */
	int64_t limit;                   /* range limit; -1: the command's default */
	int count_only;
	double rw_ratio;                 /* txn-mixed: reads per write */
	int txn_ops;                     /* txn-put: puts per transaction */

	int streams;                     /* watch: gRPC streams */
	int watchers_per_stream;
	double watch_wait;               /* watch: seconds to wait for the last events */
	int64_t lease_ttl;               /* lease-keepalive: TTL of each granted lease */
};

/* Parses argv into o (defaults first). On error prints to stderr and returns
 * non-zero; --help prints usage and returns 2. Free with bench_opts_free. */
int bench_opts_parse(struct bench_opts *o, int argc, char **argv);

void bench_opts_free(struct bench_opts *o);

void bench_opts_usage(void);

#endif
