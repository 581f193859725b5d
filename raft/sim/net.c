/*
 * raft/sim/net.c — the simulated network: a queue of messages ordered by
 * delivery time, with loss, duplication, reordering (random latency) and
 * partitions. In wire mode every message goes through the nanopb codec, as
 * it would between real nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim_int.h"

static bool before(const struct smsg *a, const struct smsg *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct sim *s, struct smsg *m)
{
	if (s->qn == s->qcap) {
		s->qcap = s->qcap ? 2 * s->qcap : 256;
		s->q = realloc(s->q, s->qcap * sizeof(*s->q));
		if (s->q == NULL) {
			abort();
		}
	}
	size_t i = s->qn++;
	while (i > 0 && before(m, &s->q[(i - 1) / 2])) {
		s->q[i] = s->q[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->q[i] = *m;
}

static void pop(struct sim *s, struct smsg *out)
{
	*out = s->q[0];
	struct smsg last = s->q[--s->qn];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->qn) {
			break;
		}
		if (c + 1 < s->qn && before(&s->q[c + 1], &s->q[c])) {
			c++;
		}
		if (!before(&s->q[c], &last)) {
			break;
		}
		s->q[i] = s->q[c];
		i = c;
	}
	if (s->qn > 0) {
		s->q[i] = last;
	}
}

static void freeMsg(struct sim *s, struct smsg *m)
{
	if (s->o->wire) {
		free(m->bytes);
	} else {
		raft_message_release(m->m);
		free(m->m);
	}
}

/* Encode into the scratch buffer, growing it when the message is larger. */
static int encode(struct sim *s, const struct raft_message *m)
{
	for (;;) {
		if (s->scratch != NULL &&
		    raft_msg_encode(m, s->scratch, s->scratch_cap, &s->scratch_len) == 0) {
			return 0;
		}
		size_t size;
		if (raft_msg_encoded_size(m, &size) != 0 || size <= s->scratch_cap) {
			simViolation(s, "cannot encode %s", raft_msg_type_name(m->type));
			return -1;
		}
		free(s->scratch);
		s->scratch_cap = size * 2;
		s->scratch = malloc(s->scratch_cap);
		if (s->scratch == NULL) {
			abort();
		}
	}
}

void netSend(struct sim *s, int from_slot, const struct raft_message *m)
{
	/* Correct nodes send a few dozen messages per step; a broken variant can
	 * make messages beget more without end. Stop instead of crawling. */
	if (++s->sent > (uint64_t)SIM_MAX_SENDS_PER_STEP * (uint64_t)(s->now + 100) ||
	    s->sent_bytes > (uint64_t)SIM_MAX_BYTES_PER_STEP * (uint64_t)(s->now + 100)) {
		if (!s->aborted) {
			simViolation(s, "message storm: %llu messages, %llu bytes sent in %d steps",
				     (unsigned long long)s->sent, (unsigned long long)s->sent_bytes,
				     s->now);
		}
		s->aborted = true;
		return;
	}
	unsigned f = s->healed ? 0 : s->o->faults;
	if ((f & SIM_FAULT_DROP) && simChance(s, 40)) {
		simTrace(s, "drop %s %llu->%llu", raft_msg_type_name(m->type),
			 (unsigned long long)m->from, (unsigned long long)m->to);
		return;
	}
	int copies = ((f & SIM_FAULT_DUP) && simChance(s, 20)) ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		struct smsg sm;
		memset(&sm, 0, sizeof(sm));
		sm.at = (uint64_t)s->now + 1 + ((s->o->faults & SIM_FAULT_REORDER) ? simRand(s) % 3 : 0);
		sm.seq = s->seq++;
		sm.from_slot = from_slot;
		sm.to = m->to;
		if (s->o->wire) {
			if (c == 0 && encode(s, m) != 0) {
				return;
			}
			sm.len = s->scratch_len;
			s->sent_bytes += sm.len;
			sm.bytes = malloc(sm.len ? sm.len : 1);
			if (sm.bytes == NULL) {
				abort();
			}
			memcpy(sm.bytes, s->scratch, sm.len);
		} else {
			sm.m = malloc(sizeof(*sm.m));
			if (sm.m == NULL || raft_message_hold(sm.m, m) != 0) {
				abort();
			}
		}
		push(s, &sm);
	}
}

/*
 * A member fetching the leader's store gets the store as it stands when
 * the leader dumps it, past the Raft snapshot the message names, and may
 * restore Raft there with the leader's raft_snapshot_meta_at (metad's
 * snap_fetch.c). Here: the sender's state machine at its applied index
 * replaces the message's image, under the same conditions. 0: unchanged.
 */
static int newerImage(struct sim *s, const struct snode *src, struct raft_message *m,
		      struct ssnap *img)
{
	struct raft_status st;
	struct raft_snapshot_meta meta;
	bool ok = false;
	if (src->r == NULL || !src->up || src->id != m->from) {
		return 0;
	}
	raft_status(src->r, &st);
	if (src->applied <= m->snapshot.meta.index || src->applied != st.applied ||
	    raft_snapshot_meta_at(src->r, src->applied, &meta) != 0 || meta.term > m->term) {
		return 0;
	}
	*img = (struct ssnap){src->applied, src->sm, pentryChainAt(src, src->applied, &ok)};
	if (!ok) {
		return 0;
	}
	m->snapshot.meta = meta;
	m->snapshot.data = (const uint8_t *)img;
	m->snapshot.len = sizeof(*img);
	m->snapshot.batch = NULL; /* borrowed: the library copies it */
	simTrace(s, "snap %llu->%llu carries the image at %llu", (unsigned long long)m->from,
		 (unsigned long long)m->to, (unsigned long long)img->index);
	return 1;
}

void netDeliverDue(struct sim *s)
{
	while (s->qn > 0 && s->q[0].at <= (uint64_t)s->now) {
		struct smsg sm;
		pop(s, &sm);
		int to = simSlotOf(s, sm.to);
		struct snode *dst = to >= 0 ? &s->nodes[to] : NULL;
		struct snode *src = &s->nodes[sm.from_slot];
		if (dst == NULL || !dst->up || (s->partitioned && dst->group != src->group)) {
			freeMsg(s, &sm);
			continue;
		}
		if (dst->paused_until > s->now) {
			/* A frozen process reads its socket later; same order. */
			sm.at = (uint64_t)dst->paused_until;
			push(s, &sm);
			continue;
		}
		struct raft_message dm;
		struct raft_message *m = sm.m;
		if (s->o->wire) {
			int rv = raft_msg_decode(sm.bytes, sm.len, &dm);
			if (rv != 0) {
				simViolation(s, "cannot decode own message: %s", raft_strerror(rv));
				freeMsg(s, &sm);
				continue;
			}
			m = &dm;
		}
		simTrace(s, "recv %s %llu->%llu t%llu i%llu lt%llu c%llu n%zu%s%s",
			 raft_msg_type_name(m->type), (unsigned long long)m->from,
			 (unsigned long long)m->to, (unsigned long long)m->term,
			 (unsigned long long)m->index, (unsigned long long)m->log_term,
			 (unsigned long long)m->commit, m->n_entries, m->reject ? " reject" : "",
			 m->type == RAFT_MSG_SNAP ? " snap" : "");
		struct raft_message newer;
		struct ssnap img;
		if (m->type == RAFT_MSG_SNAP && (s->o->faults & SIM_FAULT_SNAPSHOT) &&
		    simChance(s, 500)) {
			newer = *m; /* a copy: the held message keeps its own image */
			if (newerImage(s, src, &newer, &img)) {
				m = &newer;
			}
		}
		int rv = raft_step(dst->r, m);
		if (rv == RAFT_INVALID || rv == RAFT_CORRUPT) {
			simViolation(s, "node %llu rejected %s: %s", (unsigned long long)dst->id,
				     raft_msg_type_name(m->type), raft_strerror(rv));
		}
		if (s->o->wire) {
			raft_message_release(&dm);
		}
		freeMsg(s, &sm);
	}
}

void netClear(struct sim *s)
{
	for (size_t i = 0; i < s->qn; i++) {
		freeMsg(s, &s->q[i]);
	}
	free(s->q);
	s->q = NULL;
	s->qn = s->qcap = 0;
	free(s->scratch);
	s->scratch = NULL;
	s->scratch_cap = 0;
}
