/*
 * tools/bench/main.c — metad-bench: etcd v3 load generator (entry point).
 *
 * Exit status: 0 the run completed without a failed request; 3 it completed
 * and some requests failed (the report says which, and the first error's
 * status and message); 1 it could not run (bad options, no connection).
 */
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "cmds.h"
#include "h2.h"
#include "etcdapi/absl_quiet.h"
#include "opts.h"
#include "report.h"
#include "run.h"

int bench_show_progress(const struct bench_opts *o)
{
	return o->progress && !o->json && isatty(STDOUT_FILENO);
}

static int dispatch(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res)
{
	const char *cmd = o->cmd;
	if (strcmp(cmd, "watch") == 0 || strcmp(cmd, "watch-latency") == 0)
		return bench_cmd_watch(o, c, res);
	if (strcmp(cmd, "lease-keepalive") == 0)
		return bench_cmd_lease(o, c, res);
	return bench_cmd_kv(o, c, res);
}

/* user+sys CPU of this process so far, seconds. */
static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int known(const char *cmd)
{
	static const char *const cmds[] = {"put", "range", "txn-put", "txn-mixed", "watch",
					   "watch-latency", "lease-keepalive", "status", "serve-null"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	int rv = bench_opts_parse(&o, argc, argv);
	if (rv != 0) {
		bench_opts_free(&o);
		return rv == 2 ? 0 : 1;
	}
	if (!known(o.cmd)) {
		fprintf(stderr, "metad-bench: unknown command %s\n", o.cmd);
		bench_opts_usage();
		bench_opts_free(&o);
		return 1;
	}
	bench_install_sigint();
	absl_deadlock_detection_off();
	grpc_init();
	if (strcmp(o.cmd, "serve-null") == 0) {
		int srv = bench_cmd_serve_null(&o);
		grpc_shutdown();
		bench_opts_free(&o);
		return srv == 0 ? 0 : 1;
	}
	struct bench_conns conns;
	char err[256];
	int status = 1;
	/* Connecting gets 10 s whatever --timeout says: set-up is not a request. */
	double connect_s = 10;
	if (o.token != NULL)
		bench_auth_set_token(o.token);
	/* The KV workloads on the h2 engine open connections of their own. */
	int own = bench_h2_eligible(&o) && strcmp(o.cmd, "watch") != 0 &&
		  strcmp(o.cmd, "watch-latency") != 0 && strcmp(o.cmd, "lease-keepalive") != 0;
	memset(&conns, 0, sizeof(conns));
	if (!own && bench_conns_open(&conns, &o, connect_s, err, sizeof(err)) != 0) {
		fprintf(stderr, "metad-bench: %s\n", err);
	} else if (o.user != NULL &&
		   bench_auth_login(&conns, o.user, connect_s, err, sizeof(err)) != 0) {
		fprintf(stderr, "metad-bench: %s\n", err);
		bench_conns_close(&conns);
	} else {
		static struct bench_result res; /* large (histograms): not on the stack */
		memset(&res, 0, sizeof(res));
		res.workload = o.cmd;
		double cpu0 = cpu_seconds();
		int drv = dispatch(&o, &conns, &res);
		/* The tool's own cost: shows whether it, not the server, is the limit. */
		res.client_cpu_s = cpu_seconds() - cpu0;
		if (drv == 0) {
			bench_report_print(&res, o.json);
			status = res.stats.errors ? 3 : 0;
		}
		bench_conns_close(&conns);
	}
	bench_auth_free();
	grpc_shutdown();
	bench_opts_free(&o);
	return status;
}
