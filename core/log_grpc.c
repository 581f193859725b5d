/*
 * core/log_grpc.c — gRPC core's messages (gpr_log) as our log lines, so
 * every line the process writes has the same shape and goes to the same
 * outputs. gRPC decides which severities reach us (GRPC_VERBOSITY, ERROR
 * by default); our --log-level filters them again.
 */
#include <grpc/support/log.h>

#include "core/log.h"

static void from_grpc(gpr_log_func_args *a)
{
	const char *level = a->severity == GPR_LOG_SEVERITY_ERROR  ? "error"
			    : a->severity == GPR_LOG_SEVERITY_INFO ? "info"
								   : "debug";
	log_printf_at(a->file, a->line, level, "%s", a->message);
}

void log_route_grpc(void)
{
	gpr_set_log_function(from_grpc);
}
