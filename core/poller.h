/*
 * core/poller.h — the one thread that polls gRPC for the whole process.
 *
 * gRPC core's epoll engine keeps every socket in one epoll set, and any
 * thread waiting on a polling completion queue takes the poller's turn and
 * reads whatever socket is ready. With two such threads (client calls and
 * peer streams), each read the other's sockets and woke the other for what
 * it read. So the client API and the peer transport share one polling queue
 * and its thread (see poller.c); other queues are non-polling, served by
 * their own threads with core_poller_run.
 */
#ifndef METAD_CORE_POLLER_H
#define METAD_CORE_POLLER_H

#include <stdbool.h>

struct grpc_completion_queue;

/* The tag of every batch started with these queues: first in its owner's
 * struct, so a completion finds its way back. */
struct core_tag {
	void (*fn)(struct core_tag *tag, bool ok);
};

struct core_poller;

/* Start the polling queue and its thread ("metad-cq"); 0, or -1. */
int core_poller_start(struct core_poller **out);
/* The polling queue: register it with servers, start calls on it. */
struct grpc_completion_queue *core_poller_cq(const struct core_poller *p);
/* Shut the queue down and join the thread. Every call started on the
 * queue must have had its last completion handled. */
void core_poller_stop(struct core_poller *p);

/* Handle cq's completions until it shuts down: the loop of the poller's
 * thread, and of threads owning a non-polling queue. */
void core_poller_run(struct grpc_completion_queue *cq);

#endif
