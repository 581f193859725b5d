/*
 * tests/raft/test_paper.c — the Raft paper's scenarios, driven by hand:
 * figure 7 (divergent follower logs), figure 8 (committing an old term's
 * entry), the single-server membership hazards, a follower behind a
 * compacted log, a partitioned old leader coming back, and the extensions
 * (pre-vote, check-quorum, transfer, ReadIndex).
 */
#include "tests/raft/harness.h"

static void elect(struct cluster *c, int id)
{
	raft_campaign(c->r[id]);
	hStabilize(c);
}

static void testElectAndReplicate(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	CHECK_EQ(hPropose(&c, 1, 7), RAFT_NOLEADER);
	elect(&c, 1);
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK_EQ(hStatus(&c, 1).term, 1);
	CHECK_EQ(hStatus(&c, 2).leader, 1);
	CHECK_EQ(hPropose(&c, 1, 7), 0);
	CHECK_EQ(hPropose(&c, 2, 8), 0); /* forwarded to the leader */
	hStabilize(&c);
	hTickAll(&c, 2);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(hStatus(&c, i).commit, 3);
		CHECK_EQ(c.applied[i], 3);
	}
	CHECK(hSameLog(&c, 1, 2) && hSameLog(&c, 1, 3));
	hFree(&c);
}

/* Figure 7: whatever the followers hold, the leader's log wins and every
 * extra or conflicting entry is replaced. */
static void testFigure7(void)
{
	static const uint64_t leader[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
	static const uint64_t fa[] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
	static const uint64_t fb[] = {1, 1, 1, 4};
	static const uint64_t fc[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
	static const uint64_t fd[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
	static const uint64_t fe[] = {1, 1, 1, 4, 4, 4, 4};
	static const uint64_t ff[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
	const uint64_t *logs[] = {leader, fa, fb, fc, fd, fe, ff};
	size_t lens[] = {10, 9, 4, 11, 12, 7, 11};
	struct cluster c;
	hInit(&c, 7);
	static struct hlog l[7];
	for (int i = 0; i < 7; i++) {
		uint64_t last_term = logs[i][lens[i] - 1];
		hLog(&l[i], 7, logs[i], lens[i], i == 0 ? 7 : last_term, 3);
		hStart(&c, (uint64_t)i + 1, &l[i].p);
	}
	elect(&c, 1);
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK_EQ(hStatus(&c, 1).term, 8);
	hTickAll(&c, 3);
	for (int i = 2; i <= 7; i++) {
		CHECK(hSameLog(&c, 1, i));
		CHECK_EQ(hStatus(&c, i).last_index, 11);
		CHECK_EQ(hStatus(&c, i).commit, 11);
	}
	hFree(&c);
}

/* Figure 8: S1 leads term 4 with an entry of term 2 that S5 (term 3) does
 * not have. Once S3 stores it, a majority holds index 2, but committing it
 * then would be unsafe: S5 could still be elected and overwrite it. The
 * leader must wait until an entry of its own term is on a majority. */
static bool figure8(bool unsafe)
{
	static const uint64_t s12[] = {1, 2, 2};
	static const uint64_t s34[] = {1};
	static const uint64_t s5[] = {1, 3};
	struct cluster c;
	hInit(&c, 5);
	c.cfg.max_msg_bytes = 8; /* one entry per append: S3 acks index 2 alone */
	c.cfg.test_unsafe_commit = unsafe;
	static struct hlog l[5];
	hLog(&l[0], 5, s12, 3, 3, 1);
	hLog(&l[1], 5, s12, 3, 3, 1);
	hLog(&l[2], 5, s34, 1, 3, 1);
	hLog(&l[3], 5, s34, 1, 3, 1);
	hLog(&l[4], 5, s5, 2, 3, 1);
	l[4].p.hard_state.vote = 5;
	for (int i = 0; i < 5; i++) {
		hStart(&c, (uint64_t)i + 1, &l[i].p);
	}
	hIsolate(&c, 4, true);
	hIsolate(&c, 5, true);
	raft_campaign(c.r[1]);
	bool old_term_committed = false;
	for (int round = 0; round < 50; round++) {
		hReady(&c);
		hDeliver(&c);
		uint64_t commit = hStatus(&c, 1).commit;
		old_term_committed |= commit == 2 || commit == 3;
	}
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK_EQ(hStatus(&c, 1).term, 4);
	CHECK_EQ(hStatus(&c, 1).commit, 4); /* through the term-4 entry */
	CHECK(hSameLog(&c, 1, 3));
	hFree(&c);
	return old_term_committed;
}

static void testFigure8(void)
{
	CHECK(!figure8(false));
	/* The test-only broken rule does commit index 2 early: the scenario
	 * really exercises the hazard. */
	CHECK(figure8(true));
}

/* One change at a time, and none before the leader committed in its term:
 * otherwise two configurations that differ by two servers could both be
 * in force and elect two leaders (Ongaro, raft-dev 2015). */
static void testMembershipGuards(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	raft_campaign(c.r[1]);
	int rv = -1;
	for (int round = 0; round < 10 && hStatus(&c, 1).role != RAFT_LEADER; round++) {
		hReady(&c);
		hDeliver(&c);
	}
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	rv = raft_propose_conf_change(c.r[1], RAFT_CC_ADD_LEARNER, 4, NULL);
	CHECK_EQ(rv, RAFT_NOTREADY);
	hStabilize(&c);
	uint64_t idx;
	CHECK_EQ(raft_propose_conf_change(c.r[1], RAFT_CC_ADD_LEARNER, 4, &idx), 0);
	CHECK_EQ(idx, 2);
	CHECK_EQ(raft_propose_conf_change(c.r[1], RAFT_CC_REMOVE, 3, NULL), RAFT_CONFPENDING);
	CHECK_EQ(raft_propose_conf_change(c.r[2], RAFT_CC_REMOVE, 3, NULL), RAFT_NOTLEADER);
	struct raft_persisted empty;
	memset(&empty, 0, sizeof(empty));
	hStart(&c, 4, &empty);
	hStabilize(&c);
	hTickAll(&c, 3);
	CHECK(raft_conf_is_learner(raft_conf(c.r[4]), 4));
	CHECK(hSameLog(&c, 1, 4));
	CHECK_EQ(raft_propose_conf_change(c.r[1], RAFT_CC_ADD_LEARNER, 4, NULL), RAFT_INVALID);
	CHECK_EQ(raft_propose_conf_change(c.r[1], RAFT_CC_PROMOTE, 4, NULL), 0);
	hStabilize(&c);
	hTickAll(&c, 3);
	for (int i = 1; i <= 4; i++) {
		CHECK_EQ(raft_conf(c.r[i])->n_voters, 4);
		CHECK_EQ(hStatus(&c, i).commit, 3);
	}
	/* A learner does not vote and does not campaign. */
	hFree(&c);
}

/* A conf change that never committed is undone when its entry is truncated. */
static void testUncommittedConfRollsBack(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	elect(&c, 1);
	hIsolate(&c, 1, true);
	CHECK_EQ(raft_propose_conf_change(c.r[1], RAFT_CC_REMOVE, 3, NULL), 0);
	hStabilize(&c);
	CHECK_EQ(raft_conf(c.r[1])->n_voters, 2); /* in force as soon as appended */
	hTick(&c, 3, c.cfg.election_tick); /* let node 3's leader lease expire */
	raft_campaign(c.r[2]);
	hStabilize(&c);
	CHECK_EQ(hStatus(&c, 2).role, RAFT_LEADER);
	CHECK_EQ(hPropose(&c, 2, 99), 0);
	hStabilize(&c);
	hIsolate(&c, 1, false);
	hTickAll(&c, 3);
	CHECK_EQ(hStatus(&c, 1).role, RAFT_FOLLOWER);
	CHECK_EQ(raft_conf(c.r[1])->n_voters, 3);
	CHECK(hSameLog(&c, 1, 2));
	hFree(&c);
}

/* Node 3 cut off while node 1 commits 50 entries (applied 51 with its
 * empty entry); and, once it is back, whether it follows a new one. */
static void startWithLaggard(struct cluster *c)
{
	hInit(c, 3);
	hStartAll(c);
	elect(c, 1);
	hIsolate(c, 3, true);
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(hPropose(c, 1, (uint64_t)i), 0);
	}
	hStabilize(c);
}

static void checkLaggardFollows(struct cluster *c)
{
	CHECK_EQ(hPropose(c, 1, 1000), 0);
	hStabilize(c);
	hTickAll(c, 2);
	CHECK_EQ(hStatus(c, 3).commit, 52);
	CHECK(hSameLog(c, 1, 3));
	hFree(c);
}

static void testFollowerBehindCompactedLog(void)
{
	struct cluster c;
	startWithLaggard(&c);
	uint64_t applied = c.applied[1];
	CHECK_EQ(applied, 51);
	CHECK_EQ(raft_snapshot_taken(c.r[1], applied, "state", 5, 0), 0);
	CHECK_EQ(raft_snapshot_taken(c.r[2], c.applied[2], "state", 5, 0), 0);
	CHECK_EQ(hStatus(&c, 1).first_index, 52);
	const struct raft_entry *e;
	CHECK_EQ(raft_log_entry(c.r[1], 10, &e), RAFT_COMPACTED);
	hIsolate(&c, 3, false);
	hTickAll(&c, 5);
	CHECK_EQ(c.snapshots[3], 1);
	CHECK_EQ(hStatus(&c, 3).commit, 51);
	checkLaggardFollows(&c);
}

/* The state machine may answer a snapshot message with a newer image than
 * the library's snapshot (metad's store at the leader's applied index): the
 * follower restores there, and the leader goes on from after it. */
static void testFollowerTakesNewerImage(void)
{
	struct cluster c;
	startWithLaggard(&c);
	CHECK_EQ(c.applied[1], 51);
	CHECK_EQ(raft_snapshot_taken(c.r[1], 30, "state", 5, 0), 0);
	struct raft_snapshot_meta at;
	CHECK_EQ(raft_snapshot_meta_at(c.r[1], 29, &at), RAFT_COMPACTED);
	CHECK_EQ(raft_snapshot_meta_at(c.r[1], 52, &at), RAFT_UNAVAILABLE);
	CHECK_EQ(raft_snapshot_meta_at(c.r[1], 51, &at), 0);
	CHECK_EQ(at.index, 51);
	CHECK_EQ(at.term, 1);
	CHECK_EQ(at.conf.n_voters, 3);
	hIsolate(&c, 3, false);
	int swapped = 0;
	for (int round = 0; round < 20 && hStatus(&c, 3).commit < 51; round++) {
		for (int i = 1; i <= 3; i++) {
			raft_tick(c.r[i]);
		}
		hReady(&c);
		for (size_t i = 0; i < c.qn; i++) {
			struct raft_message *m = &c.q[i];
			if (m->type == RAFT_MSG_SNAP && m->to == 3) {
				CHECK_EQ(m->snapshot.meta.index, 30);
				m->snapshot.meta = at;
				swapped++;
			}
		}
		hDeliver(&c);
	}
	hStabilize(&c);
	CHECK(swapped > 0);
	CHECK_EQ(c.snapshots[3], 1);
	CHECK_EQ(hStatus(&c, 3).snapshot_index, 51);
	CHECK_EQ(hStatus(&c, 3).first_index, 52);
	uint64_t match = 0;
	CHECK_EQ(raft_match(c.r[1], 3, &match), 0);
	CHECK_EQ(match, 51);
	checkLaggardFollows(&c);
}

static void testOldLeaderComesBack(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	elect(&c, 1);
	hIsolate(&c, 1, true);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(hPropose(&c, 1, 500 + (uint64_t)i), 0); /* never committed */
	}
	hStabilize(&c);
	/* Check-quorum: alone, the old leader steps down within a timeout. */
	hTick(&c, 1, 2 * c.cfg.election_tick);
	hStabilize(&c);
	CHECK(hStatus(&c, 1).role != RAFT_LEADER);
	hTick(&c, 3, c.cfg.election_tick); /* let node 3's leader lease expire */
	raft_campaign(c.r[2]);
	hStabilize(&c);
	CHECK_EQ(hStatus(&c, 2).role, RAFT_LEADER);
	CHECK_EQ(hPropose(&c, 2, 600), 0);
	hStabilize(&c);
	uint64_t commit = hStatus(&c, 2).commit;
	hIsolate(&c, 1, false);
	hTickAll(&c, 3);
	CHECK_EQ(hStatus(&c, 1).leader, 2);
	CHECK_EQ(hStatus(&c, 1).commit, commit);
	CHECK(hSameLog(&c, 1, 2));
	const struct raft_entry *e;
	CHECK_EQ(raft_log_entry(c.r[1], 2, &e), 0);
	CHECK_EQ(e->term, hStatus(&c, 2).term); /* the old leader's entries are gone */
	hFree(&c);
}

/* Pre-vote: a node cut off from the others cannot raise its term, so it does
 * not depose the leader when it comes back. */
static void testPreVoteNoDisruption(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	elect(&c, 1);
	hIsolate(&c, 3, true);
	hTick(&c, 3, 10 * c.cfg.election_tick);
	hStabilize(&c);
	CHECK_EQ(hStatus(&c, 3).term, 1);
	hIsolate(&c, 3, false);
	hTickAll(&c, 3);
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK_EQ(hStatus(&c, 1).term, 1);
	hFree(&c);
}

static void testLeaderTransfer(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	elect(&c, 1);
	CHECK_EQ(raft_transfer_leader(c.r[1], 1), RAFT_INVALID);
	CHECK_EQ(raft_transfer_leader(c.r[1], 9), RAFT_UNKNOWNPEER);
	CHECK_EQ(raft_transfer_leader(c.r[1], 2), 0);
	CHECK_EQ(hPropose(&c, 1, 5), RAFT_TRANSFERRING);
	hStabilize(&c);
	CHECK_EQ(hStatus(&c, 2).role, RAFT_LEADER);
	CHECK_EQ(hStatus(&c, 1).leader, 2);
	CHECK_EQ(hStatus(&c, 2).term, 2);
	hFree(&c);
}

static void testReadIndex(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	elect(&c, 1);
	CHECK_EQ(hPropose(&c, 1, 5), 0);
	hStabilize(&c);
	CHECK_EQ(raft_read_index(c.r[1], 42), 0);
	CHECK_EQ(raft_read_index(c.r[1], 43), 0); /* same heartbeat round */
	hStabilize(&c);
	CHECK_EQ(c.reads[1], 2);
	CHECK_EQ(c.read_ctx[1], 43);
	CHECK_EQ(c.read_index[1], 2);
	CHECK_EQ(raft_read_index(c.r[2], 44), 0); /* forwarded */
	hStabilize(&c);
	CHECK_EQ(c.reads[2], 1);
	CHECK_EQ(c.read_ctx[2], 44);
	CHECK_EQ(c.read_index[2], 2);
	/* A leader cut off from its quorum cannot confirm a read. */
	hIsolate(&c, 1, true);
	CHECK_EQ(raft_read_index(c.r[1], 45), 0);
	hTick(&c, 1, 3);
	hStabilize(&c);
	CHECK_EQ(c.reads[1], 2);
	hFree(&c);
}

/* Which readies a driver may send before persisting (raft_ready.send_first):
 * a leader's, once its term and vote are durable; never a candidate's or a
 * follower's, and not the one in which a lone voter wins its campaign. */
static bool readySendFirst(struct cluster *c, int id)
{
	return hReadyOne(c, id) && c->send_first[id];
}

static void testSendFirst(void)
{
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	raft_campaign(c.r[1]);
	for (int round = 0; round < 4 && hStatus(&c, 1).role != RAFT_LEADER; round++) {
		/* (Pre-)candidate and voters: terms and votes go to disk first. */
		for (int id = 1; id <= 3; id++) {
			CHECK(!readySendFirst(&c, id));
		}
		hDeliver(&c);
	}
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK(readySendFirst(&c, 1)); /* elected in a durable term */
	hDeliver(&c);
	CHECK(!readySendFirst(&c, 2)); /* acks wait for the append */
	hStabilize(&c);
	CHECK_EQ(hPropose(&c, 1, 7), 0);
	CHECK(readySendFirst(&c, 1));
	hStabilize(&c);
	hFree(&c);

	/* A lone voter wins at once: term, vote and leadership in one ready. */
	hInit(&c, 1);
	hStartAll(&c);
	raft_campaign(c.r[1]);
	CHECK_EQ(hStatus(&c, 1).role, RAFT_LEADER);
	CHECK(!readySendFirst(&c, 1));
	CHECK_EQ(hPropose(&c, 1, 7), 0);
	CHECK(readySendFirst(&c, 1));
	hFree(&c);
}

int main(void)
{
	RUN(testElectAndReplicate);
	RUN(testFigure7);
	RUN(testFigure8);
	RUN(testMembershipGuards);
	RUN(testUncommittedConfRollsBack);
	RUN(testFollowerBehindCompactedLog);
	RUN(testFollowerTakesNewerImage);
	RUN(testOldLeaderComesBack);
	RUN(testPreVoteNoDisruption);
	RUN(testLeaderTransfer);
	RUN(testReadIndex);
	RUN(testSendFirst);
	return failures ? 1 : 0;
}
