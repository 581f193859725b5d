/*
 * tools/bench/cmds.h — the subcommands. Each runs one workload over open
 * connections, fills res, and returns 0, or non-zero when the run could not
 * be set up (its message already printed on stderr).
 */
#ifndef METAD_BENCH_CMDS_H
#define METAD_BENCH_CMDS_H

#include "conn.h"
#include "opts.h"
#include "report.h"

/* put, range, txn-put, txn-mixed, status (kv.c) */
int bench_cmd_kv(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res);

/* watch, watch-latency (watch.c) */
int bench_cmd_watch(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res);

/* lease-keepalive (lease.c) */
int bench_cmd_lease(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res);

/* serve-null: a do-nothing server on --endpoints, until SIGINT or --duration
 * (null_server.c). Not a load: it measures the tool's own ceiling. */
int bench_cmd_serve_null(const struct bench_opts *o);

/* Whether the progress bar is drawn: a terminal, no --json, no --no-progress. */
int bench_show_progress(const struct bench_opts *o);

#endif
