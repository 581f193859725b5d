/*
 * controllers/runtime.c — the controller thread: leadership, list + watch of
 * /_meta/, dispatch to the controllers, timers.
 *
 * One thread does everything a controller does, so controllers share state
 * (the node registry) without locks. It polls core_status every poll_ms:
 * when this member becomes leader it starts the controllers (a linearizable
 * list of /_meta/ replayed as PUT events, then one watch of /_meta/ from the
 * listed revision + 1); when it stops being leader it stops them. The watch
 * sink only queues the packed responses and signals the thread; each one is
 * handed back to core (core_watch_sent) once processed, so the hub's send
 * budget bounds the queue.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controllers/ctl_internal.h"
#include "core/core.h"

/* Every controller, in the order they see each event (nodes first). */
static const struct ctl_ops *const CONTROLLERS[] = {&ctl_nodes_ops, &ctl_journal_ops,
						    &ctl_mqtt_ops};
#define N_CTL (sizeof(CONTROLLERS) / sizeof(CONTROLLERS[0]))

struct msg {
	struct msg *next;
	size_t len;
	uint8_t data[];
};

struct controllers {
	struct core *core;
	struct ctl_config cfg;
	pthread_t thread;
	pthread_mutex_t mu; /* guards the fields below it */
	pthread_cond_t cv;
	bool stopping;
	struct msg *head, *tail; /* watch responses not yet processed */
	bool sink_closed;
	bool lost; /* a response could not be queued: start over */
	/* controller thread only */
	bool active, synced, relist;
	void *state[N_CTL];
	struct core_watch_stream *ws;
	int64_t rev; /* listed or last seen revision */
	uint64_t actions, starts;
};

/* struct ctl is the runtime as controllers see it. */
struct ctl {
	struct controllers c;
};

static int64_t mono_ms(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_leader(struct core *core)
{
	struct core_status st;
	core_status(core, &st);
	return st.leader != 0 && st.leader == st.member_id;
}

bool ctl_leading(struct ctl *rt)
{
	return is_leader(rt->c.core);
}

int64_t ctl_now(struct ctl *rt)
{
	return rt->c.cfg.clock.now_ms(rt->c.cfg.clock.arg);
}

struct core *ctl_core(struct ctl *rt)
{
	return rt->c.core;
}

bool ctl_synced(struct ctl *rt)
{
	return rt->c.synced;
}

void *ctl_nodes_state(struct ctl *rt)
{
	return rt->c.state[0];
}

void ctl_count_action(struct ctl *rt)
{
	rt->c.actions++;
}

void ctl_notify_node(struct ctl *rt, const struct ctl_node *n, enum ctl_node_change ch)
{
	if (!rt->c.synced)
		return;
	for (size_t i = 1; i < N_CTL; i++)
		if (CONTROLLERS[i]->node != NULL && rt->c.state[i] != NULL)
			CONTROLLERS[i]->node(rt, rt->c.state[i], n, ch);
}

/* ---- watch sink (hub thread) ---- */

static void sink_send(void *arg, const uint8_t *data, size_t len)
{
	struct controllers *c = arg;
	struct msg *m = malloc(sizeof(*m) + len);
	if (m == NULL) {
		/* Lost: the next poll re-lists, which repairs whatever it held. */
		pthread_mutex_lock(&c->mu);
		c->lost = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	pthread_mutex_lock(&c->mu);
	if (c->tail != NULL)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void sink_closed(void *arg)
{
	struct controllers *c = arg;
	pthread_mutex_lock(&c->mu);
	c->sink_closed = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static const struct core_watch_sink SINK = {sink_send, sink_closed};

/* ---- dispatch ---- */

static void kv_of(struct ctl_kv *out, const Mvccpb__KeyValue *kv)
{
	out->key = (const char *)kv->key.data;
	out->key_len = kv->key.len;
	out->value = (const char *)kv->value.data;
	out->value_len = kv->value.len;
	out->create_rev = kv->create_revision;
	out->mod_rev = kv->mod_revision;
	out->version = kv->version;
	out->lease = kv->lease;
}

static void dispatch(struct ctl *rt, const struct ctl_event *ev)
{
	const size_t plen = strlen(CTL_PREFIX);
	if (ev->kv.key_len < plen || memcmp(ev->kv.key, CTL_PREFIX, plen) != 0)
		return;
	for (size_t i = 0; i < N_CTL; i++) {
		if (rt->c.state[i] == NULL)
			continue;
		for (const char *const *p = CONTROLLERS[i]->prefixes; *p != NULL; p++) {
			size_t n = strlen(*p);
			if (ev->kv.key_len >= plen + n && memcmp(ev->kv.key + plen, *p, n) == 0) {
				CONTROLLERS[i]->event(rt, rt->c.state[i], ev);
				break;
			}
		}
	}
}

static void stop_all(struct ctl *rt)
{
	struct controllers *c = &rt->c;
	if (c->ws != NULL) {
		core_watch_close(c->ws);
		pthread_mutex_lock(&c->mu);
		while (!c->sink_closed)
			pthread_cond_wait(&c->cv, &c->mu);
		struct msg *m = c->head;
		c->head = c->tail = NULL;
		pthread_mutex_unlock(&c->mu);
		while (m != NULL) {
			struct msg *next = m->next;
			free(m);
			m = next;
		}
		c->ws = NULL;
	}
	for (size_t i = N_CTL; i-- > 0;)
		if (c->state[i] != NULL) {
			CONTROLLERS[i]->stop(rt, c->state[i]);
			c->state[i] = NULL;
		}
	c->active = c->synced = false;
}

/* List /_meta/ and replay it, then watch from the next revision. */
static int start_all(struct ctl *rt)
{
	struct controllers *c = &rt->c;
	c->starts++;
	for (size_t i = 0; i < N_CTL; i++)
		if (CONTROLLERS[i]->start(rt, &c->state[i]) != 0)
			return -1;
	c->active = true;
	const size_t plen = strlen(CTL_PREFIX);
	char end[sizeof(CTL_PREFIX)];
	size_t elen = ctl_prefix_end(CTL_PREFIX, plen, end);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, CTL_PREFIX, plen, end, elen, 0, &reply, &resp) != CORE_OK)
		return -1;
	c->rev = resp->header != NULL ? resp->header->revision : 0;
	for (size_t i = 0; i < resp->n_kvs; i++) {
		struct ctl_event ev = {.type = CTL_PUT, .listing = true};
		kv_of(&ev.kv, resp->kvs[i]);
		dispatch(rt, &ev);
	}
	core_reply_free(reply);
	c->synced = true;
	for (size_t i = 0; i < N_CTL; i++)
		if (CONTROLLERS[i]->synced != NULL)
			CONTROLLERS[i]->synced(rt, c->state[i]);

	c->sink_closed = false;
	c->ws = core_watch_open(c->core, &SINK, c);
	if (c->ws == NULL)
		return -1;
	Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	cr.key.data = (uint8_t *)CTL_PREFIX;
	cr.key.len = plen;
	cr.range_end.data = (uint8_t *)end;
	cr.range_end.len = elen;
	cr.start_revision = c->rev + 1;
	cr.prev_kv = false; /* no controller needs it; each would cost a read */
	Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
	wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	wr.create_request = &cr;
	core_watch_request(c->ws, &wr);
	return 0;
}

/* One watch response: its events, or a reason to start over. */
static void process(struct ctl *rt, const struct msg *m)
{
	struct controllers *c = &rt->c;
	Etcdserverpb__WatchResponse *wr =
		etcdserverpb__watch_response__unpack(NULL, m->len, m->data);
	if (wr == NULL) {
		c->relist = true;
		return;
	}
	if (wr->canceled || wr->compact_revision != 0) {
		core_log("warn", "controllers: watch of %s ended (compacted at %lld); re-listing",
			 CTL_PREFIX, (long long)wr->compact_revision);
		c->relist = true;
	}
	for (size_t i = 0; i < wr->n_events && !c->relist; i++) {
		const Mvccpb__Event *e = wr->events[i];
		if (e->kv == NULL)
			continue;
		struct ctl_event ev = {.type = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? CTL_DELETE
											: CTL_PUT};
		kv_of(&ev.kv, e->kv);
		if (e->prev_kv != NULL) {
			ev.has_prev = true;
			kv_of(&ev.prev, e->prev_kv);
		}
		if (e->kv->mod_revision > c->rev)
			c->rev = e->kv->mod_revision;
		dispatch(rt, &ev);
	}
	etcdserverpb__watch_response__free_unpacked(wr, NULL);
	for (size_t i = 0; i < N_CTL && !c->relist; i++)
		if (CONTROLLERS[i]->flush != NULL && c->state[i] != NULL)
			CONTROLLERS[i]->flush(rt, c->state[i]);
}


static void *run(void *arg)
{
	struct ctl *rt = arg;
	struct controllers *c = &rt->c;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool stopping = c->stopping;
		bool relist = c->relist || c->lost;
		c->relist = c->lost = false;
		pthread_mutex_unlock(&c->mu);
		if (stopping)
			break;
		bool leader = is_leader(c->core);
		if (c->active && (!leader || relist)) {
			core_log("info", "controllers: stopping (%s)",
				 leader ? "re-list" : "no longer leader");
			stop_all(rt);
		}
		if (!c->active && leader) {
			core_log("info", "controllers: starting on the leader");
			if (start_all(rt) != 0) {
				core_log("warn", "controllers: start failed; retrying");
				stop_all(rt);
			}
		}
		/* Work queued by the watch, one response at a time. */
		for (int budget = 64; c->active && !c->relist && budget > 0; budget--) {
			pthread_mutex_lock(&c->mu);
			struct msg *m = c->head;
			if (m != NULL) {
				c->head = m->next;
				if (c->head == NULL)
					c->tail = NULL;
			}
			pthread_mutex_unlock(&c->mu);
			if (m == NULL)
				break;
			process(rt, m);
			core_watch_sent(c->ws, m->len + CORE_WATCH_MSG_OVERHEAD);
			free(m);
		}
		if (c->active && !c->relist) {
			int64_t now = ctl_now(rt);
			for (size_t i = 0; i < N_CTL; i++)
				if (CONTROLLERS[i]->tick != NULL && c->state[i] != NULL)
					CONTROLLERS[i]->tick(rt, c->state[i], now);
		}
		pthread_mutex_lock(&c->mu);
		if (!c->stopping && c->head == NULL && !c->relist && !c->lost) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += (long)(c->cfg.poll_ms % 1000) * 1000000L;
			dl.tv_sec += c->cfg.poll_ms / 1000 + dl.tv_nsec / 1000000000L;
			dl.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &dl);
		}
		pthread_mutex_unlock(&c->mu);
	}
	if (c->active)
		stop_all(rt);
	return NULL;
}

int controllers_start(struct core *core, const struct ctl_config *cfg, struct controllers **out)
{
	struct ctl *rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return -1;
	struct controllers *c = &rt->c;
	c->core = core;
	if (cfg != NULL)
		c->cfg = *cfg;
	if (c->cfg.clock.now_ms == NULL)
		c->cfg.clock.now_ms = mono_ms;
	if (c->cfg.poll_ms <= 0)
		c->cfg.poll_ms = 20;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, run, rt) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(rt);
		return -1;
	}
	*out = c;
	return 0;
}

void controllers_stop(struct controllers *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
