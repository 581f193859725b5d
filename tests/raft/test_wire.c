/*
 * tests/raft/test_wire.c — the nanopb wire format: round trips of every
 * record, and hostile input (random bytes, truncations, bit flips, huge
 * counts) that must be rejected with an error, never crash. Decoded garbage
 * is also fed to live nodes, which must survive it.
 */
#include "tests/raft/harness.h"

static uint64_t rng = 12345;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t encode(const struct raft_message *m, uint8_t **out)
{
	size_t size, len = 0;
	CHECK_EQ(raft_msg_encoded_size(m, &size), 0);
	*out = malloc(size + 1);
	CHECK_EQ(raft_msg_encode(m, *out, size, &len), 0);
	CHECK_EQ(len, size);
	return len;
}

static void testMessageRoundTrip(void)
{
	uint8_t payload[3][300];
	struct raft_entry e[3];
	for (int i = 0; i < 3; i++) {
		memset(payload[i], 'a' + i, sizeof(payload[i]));
		e[i] = (struct raft_entry){.term = 7,
					   .index = 100 + (uint64_t)i,
					   .type = i == 2 ? RAFT_ENTRY_CONF_CHANGE : RAFT_ENTRY_NORMAL,
					   .len = i == 1 ? 0 : (uint32_t)(100 * (i + 1)),
					   .data = payload[i]};
	}
	struct raft_message m = {.type = RAFT_MSG_APP,
				 .from = 1,
				 .to = 2,
				 .term = 7,
				 .log_term = 6,
				 .index = 99,
				 .commit = 98,
				 .reject = true,
				 .reject_hint = 5,
				 .context = UINT64_MAX,
				 .entries = e,
				 .n_entries = 3};
	uint8_t *buf;
	size_t len = encode(&m, &buf);
	struct raft_message d;
	CHECK_EQ(raft_msg_decode(buf, len, &d), 0);
	free(buf); /* decoded payloads live in their own batch */
	CHECK_EQ(d.type, RAFT_MSG_APP);
	CHECK_EQ(d.from, 1);
	CHECK_EQ(d.to, 2);
	CHECK_EQ(d.term, 7);
	CHECK_EQ(d.log_term, 6);
	CHECK_EQ(d.index, 99);
	CHECK_EQ(d.commit, 98);
	CHECK(d.reject);
	CHECK_EQ(d.reject_hint, 5);
	CHECK_EQ(d.context, UINT64_MAX);
	CHECK_EQ(d.n_entries, 3);
	for (size_t i = 0; i < d.n_entries && i < 3; i++) {
		CHECK_EQ(d.entries[i].term, e[i].term);
		CHECK_EQ(d.entries[i].index, e[i].index);
		CHECK_EQ(d.entries[i].type, e[i].type);
		CHECK_EQ(d.entries[i].len, e[i].len);
		CHECK(e[i].len == 0 || memcmp(d.entries[i].data, payload[i], e[i].len) == 0);
		CHECK(d.entries[i].batch != NULL);
	}
	raft_message_release(&d);

	struct raft_message s = {.type = RAFT_MSG_SNAP, .from = 3, .to = 1, .term = 9};
	s.snapshot.meta.index = 50;
	s.snapshot.meta.term = 8;
	s.snapshot.meta.conf.n_voters = 2;
	s.snapshot.meta.conf.voters[0] = 1;
	s.snapshot.meta.conf.voters[1] = 3;
	s.snapshot.meta.conf.n_learners = 1;
	s.snapshot.meta.conf.learners[0] = 4;
	s.snapshot.data = (const uint8_t *)"snapshot-bytes";
	s.snapshot.len = 14;
	len = encode(&s, &buf);
	CHECK_EQ(raft_msg_decode(buf, len, &d), 0);
	free(buf);
	CHECK_EQ(d.snapshot.meta.index, 50);
	CHECK_EQ(d.snapshot.meta.term, 8);
	CHECK_EQ(d.snapshot.meta.conf.n_voters, 2);
	CHECK_EQ(d.snapshot.meta.conf.voters[1], 3);
	CHECK_EQ(d.snapshot.meta.conf.learners[0], 4);
	CHECK_EQ(d.snapshot.len, 14);
	CHECK(d.snapshot.len == 14 && memcmp(d.snapshot.data, "snapshot-bytes", 14) == 0);
	raft_message_release(&d);

	uint8_t small[8];
	size_t l2;
	CHECK_EQ(raft_msg_encode(&m, small, sizeof(small), &l2), RAFT_TOOBIG);
}

static void testRecordRoundTrips(void)
{
	uint8_t buf[1024];
	size_t len;
	struct raft_entry e = {.term = 3, .index = 4, .type = 1, .len = 5, .data = (const uint8_t *)"hello"};
	struct raft_entry de;
	CHECK_EQ(raft_entry_encode(&e, buf, sizeof(buf), &len), 0);
	CHECK_EQ(raft_entry_decode(buf, len, &de), 0);
	CHECK(de.term == 3 && de.index == 4 && de.type == 1 && de.len == 5);
	CHECK(memcmp(de.data, "hello", 5) == 0);

	struct raft_hard_state hs = {10, 2, 77}, dhs;
	CHECK_EQ(raft_hard_state_encode(&hs, buf, sizeof(buf), &len), 0);
	CHECK_EQ(raft_hard_state_decode(buf, len, &dhs), 0);
	CHECK(dhs.term == 10 && dhs.vote == 2 && dhs.commit == 77);

	struct raft_snapshot_meta sm, dsm;
	memset(&sm, 0, sizeof(sm));
	sm.index = 9;
	sm.term = 2;
	for (int i = 0; i < RAFT_MAX_MEMBERS; i++) {
		sm.conf.voters[sm.conf.n_voters++] = (uint64_t)i + 1;
	}
	CHECK_EQ(raft_snapshot_meta_encode(&sm, buf, sizeof(buf), &len), 0);
	CHECK_EQ(raft_snapshot_meta_decode(buf, len, &dsm), 0);
	CHECK(dsm.index == 9 && dsm.term == 2 && dsm.conf.n_voters == RAFT_MAX_MEMBERS);

	struct raft_conf_change cc, dcc;
	memset(&cc, 0, sizeof(cc));
	cc.type = RAFT_CC_PROMOTE;
	cc.node_id = UINT64_MAX;
	for (int i = 0; i < RAFT_MAX_MEMBERS / 2; i++) {
		cc.result.voters[cc.result.n_voters++] = UINT64_MAX - (uint64_t)i;
		cc.result.learners[cc.result.n_learners++] = (uint64_t)i + 1;
	}
	CHECK_EQ(raft_conf_change_encode(&cc, buf, RAFT_CONF_CHANGE_MAX_BYTES, &len), 0);
	CHECK(len <= RAFT_CONF_CHANGE_MAX_BYTES);
	CHECK_EQ(raft_conf_change_decode(buf, len, &dcc), 0);
	CHECK(dcc.type == cc.type && dcc.node_id == cc.node_id);
	CHECK(dcc.result.n_voters == 16 && dcc.result.voters[15] == UINT64_MAX - 15);

	/* A configuration with a duplicate member is corrupt. */
	cc.result.learners[0] = cc.result.voters[0];
	CHECK_EQ(raft_conf_change_encode(&cc, buf, sizeof(buf), &len), 0);
	CHECK_EQ(raft_conf_change_decode(buf, len, &dcc), RAFT_CORRUPT);
}

static void testLimits(void)
{
	/* 2^20 + 1 empty entries: field 11, length 0, repeated. */
	size_t n = RAFT_WIRE_MAX_ENTRIES + 1;
	uint8_t *buf = malloc(2 * n);
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = (11 << 3) | 2;
		buf[2 * i + 1] = 0;
	}
	struct raft_message d;
	CHECK_EQ(raft_msg_decode(buf, 2 * n, &d), RAFT_TOOBIG);
	CHECK_EQ(raft_msg_decode(buf, (size_t)RAFT_WIRE_MAX_MSG + 1, &d), RAFT_TOOBIG);
	free(buf);
	/* 33 voters exceed the fixed member array. */
	uint8_t v[200];
	size_t l = 0;
	v[l++] = (3 << 3) | 2; /* ConfChange.result */
	v[l++] = 33 * 2 + 2;
	v[l++] = (1 << 3) | 2; /* packed voters */
	v[l++] = 33;
	for (int i = 0; i < 33; i++) {
		v[l++] = (uint8_t)(i + 1);
	}
	struct raft_conf_change cc;
	CHECK(raft_conf_change_decode(v, l, &cc) != 0);
}

/* Feed a decoded (possibly nonsensical) message to live nodes. */
static void stepAll(struct cluster *c, struct raft_message *m)
{
	for (int id = 1; id <= c->n; id++) {
		struct raft_message copy = *m;
		copy.to = (uint64_t)id;
		if (copy.from == 0 || copy.from > (uint64_t)c->n + 1) {
			copy.from = 1 + rnd() % (uint64_t)c->n;
		}
		raft_step(c->r[id], &copy);
	}
	hReady(c);
	for (size_t i = 0; i < c->qn; i++) {
		raft_message_release(&c->q[i]);
	}
	c->qn = 0;
}

static void testHostileBytes(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	raft_campaign(c.r[1]);
	hStabilize(&c);
	for (int i = 0; i < 20; i++) {
		hPropose(&c, 1, (uint64_t)i);
	}
	hStabilize(&c);

	/* Valid encodings to mutate. */
	struct raft_entry e[2] = {{.term = 1, .index = 22, .len = 3, .data = (const uint8_t *)"abc"},
				  {.term = 1, .index = 23, .len = 0}};
	struct raft_message seeds[3] = {
		{.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .index = 21, .log_term = 1,
		 .commit = 21, .entries = e, .n_entries = 2},
		{.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1},
		{.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 500},
	};
	seeds[1].snapshot.meta.index = 30;
	seeds[1].snapshot.meta.term = 1;
	seeds[1].snapshot.meta.conf.n_voters = 1;
	seeds[1].snapshot.meta.conf.voters[0] = 2;
	seeds[1].snapshot.data = (const uint8_t *)"xy";
	seeds[1].snapshot.len = 2;
	int decoded = 0, rejected = 0;
	for (int s = 0; s < 3; s++) {
		uint8_t *buf;
		size_t len = encode(&seeds[s], &buf);
		for (size_t cut = 0; cut <= len; cut++) {
			struct raft_message d;
			if (raft_msg_decode(buf, cut, &d) == 0) {
				decoded++;
				stepAll(&c, &d);
				raft_message_release(&d);
			} else {
				rejected++;
			}
		}
		for (int k = 0; k < 3000; k++) {
			uint8_t *mut = malloc(len);
			memcpy(mut, buf, len);
			int flips = 1 + (int)(rnd() % 4);
			for (int f = 0; f < flips; f++) {
				mut[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
			}
			struct raft_message d;
			if (raft_msg_decode(mut, len, &d) == 0) {
				decoded++;
				stepAll(&c, &d);
				raft_message_release(&d);
			} else {
				rejected++;
			}
			free(mut);
		}
		free(buf);
	}
	for (int k = 0; k < 20000; k++) {
		size_t len = rnd() % 64;
		uint8_t buf[64];
		for (size_t i = 0; i < len; i++) {
			buf[i] = (uint8_t)rnd();
		}
		struct raft_message d;
		if (raft_msg_decode(buf, len, &d) == 0) {
			decoded++;
			stepAll(&c, &d);
			raft_message_release(&d);
		} else {
			rejected++;
		}
		struct raft_conf_change cc;
		struct raft_entry de;
		struct raft_hard_state hs;
		struct raft_snapshot_meta sm;
		raft_conf_change_decode(buf, len, &cc);
		raft_entry_decode(buf, len, &de);
		raft_hard_state_decode(buf, len, &hs);
		raft_snapshot_meta_decode(buf, len, &sm);
	}
	CHECK(decoded > 100);
	CHECK(rejected > 100);
	printf("     hostile inputs: %d decoded and stepped, %d rejected\n", decoded, rejected);
	hFree(&c);
}

int main(void)
{
	RUN(testMessageRoundTrip);
	RUN(testRecordRoundTrips);
	RUN(testLimits);
	RUN(testHostileBytes);
	return failures ? 1 : 0;
}
