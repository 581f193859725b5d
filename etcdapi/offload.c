/*
 * etcdapi/offload.c — worker threads for long-running handlers.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "etcdapi/offload.h"

#define WORKERS 2

struct job {
	struct job *next;
	struct api_call *call;
	api_handler_fn fn;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static bool stopping;
static pthread_t workers[WORKERS];
static int n_workers;

static void *worker_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "metad-slow");
	pthread_mutex_lock(&mu);
	for (;;) {
		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (head == NULL)
			break;
		struct job *j = head;
		head = j->next;
		if (head == NULL)
			tail = NULL;
		pthread_mutex_unlock(&mu);
		j->fn(j->call, j->call->req);
		free(j);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int api_offload_start(void)
{
	stopping = false;
	for (n_workers = 0; n_workers < WORKERS; n_workers++)
		if (pthread_create(&workers[n_workers], NULL, worker_main, NULL) != 0)
			break;
	return n_workers > 0 ? 0 : -1;
}

void api_offload_stop(void)
{
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n_workers; i++)
		pthread_join(workers[i], NULL);
	n_workers = 0;
}

void api_offload(struct api_call *call, api_handler_fn fn)
{
	struct job *j = malloc(sizeof(*j));
	if (j == NULL) {
		fn(call, call->req);
		return;
	}
	j->next = NULL;
	j->call = call;
	j->fn = fn;
	pthread_mutex_lock(&mu);
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}
