/*
 * tests/core/test_members.c — member and cluster ids exactly as etcd derives
 * them (values read from etcd 3.4's own start-up logs), and the member list
 * built from --initial-cluster, stored, and found again on restart.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/members.h"
#include "storage/raftlog.h"
#include "tests/expect.h"

static void test_ids(void)
{
	/* etcd's defaults: --name default, peer http://localhost:2380,
	 * token etcd-cluster. */
	const char *def[] = {"http://localhost:2380"};
	uint64_t id = members_id(def, 1, "etcd-cluster", 0);
	EXPECT(id == 0x8e9e05c52164694dULL);
	EXPECT(members_cluster_id(&id, 1) == 0xcdf818194e3a8c32ULL);

	/* Three members, token "tok" (etcd 3.4: "added member ... to cluster"). */
	const char *u0[] = {"http://127.0.0.1:31800"}, *u1[] = {"http://127.0.0.1:31801"},
		   *u2[] = {"http://127.0.0.1:31802"};
	uint64_t ids[3] = {members_id(u0, 1, "tok", 0), members_id(u1, 1, "tok", 0),
			   members_id(u2, 1, "tok", 0)};
	EXPECT(ids[0] == 0x4ccde0faab7444a4ULL);
	EXPECT(ids[1] == 0x11521e9f1567902eULL);
	EXPECT(ids[2] == 0x28d8e5b6ac9c8377ULL);
	EXPECT(members_cluster_id(ids, 3) == 0x91876f752d0ddc5eULL);
	/* Order of URLs or ids does not matter: both are sorted first. */
	uint64_t rev[3] = {ids[2], ids[0], ids[1]};
	EXPECT(members_cluster_id(rev, 3) == 0x91876f752d0ddc5eULL);
	const char *two[] = {"http://b:2", "http://a:1"}, *two_sorted[] = {"http://a:1", "http://b:2"};
	EXPECT(members_id(two, 2, "t", 0) == members_id(two_sorted, 2, "t", 0));
	/* A member added at runtime mixes in the time. */
	EXPECT(members_id(u0, 1, "tok", 1700000000) != ids[0]);
}

static void test_open(void)
{
	char dir[] = "/tmp/metad-members-XXXXXX";
	EXPECT(mkdtemp(dir) != NULL);
	struct db *db = NULL;
	struct db_session *s = NULL;
	char err[256] = "";
	struct db_options o = {0};
	EXPECT(db_open(dir, &o, &db, err, sizeof(err)) == DB_OK);
	EXPECT(rlog_init(db) == DB_OK);
	EXPECT(db_session_open(db, &s) == DB_OK);

	const char *spec = "m0=http://127.0.0.1:31800,m1=http://127.0.0.1:31801,"
			   "m2=http://127.0.0.1:31802";
	struct members m;
	uint64_t self = 0;
	EXPECT(members_open(&m, s, spec, "tok", "nobody", NULL, 0, &self, err, sizeof(err)) == -1);
	EXPECT(strstr(err, "couldn't find local name \"nobody\"") != NULL);
	members_close(&m);
	EXPECT(members_open(&m, s, "m0", "tok", "m0", NULL, 0, &self, err, sizeof(err)) == -1);
	members_close(&m);

	EXPECT(members_open(&m, s, spec, "tok", "m1", NULL, 0, &self, err, sizeof(err)) == 0);
	EXPECT(self == 0x11521e9f1567902eULL);
	EXPECT(m.cluster_id == 0x91876f752d0ddc5eULL);
	uint64_t ids[MEMBERS_MAX];
	bool learner[MEMBERS_MAX];
	EXPECT(members_ids(&m, ids, learner, MEMBERS_MAX) == 3);
	/* Only this member's name is known until the others publish theirs. */
	EXPECT(members_published(&m, self));
	EXPECT(!members_published(&m, 0x4ccde0faab7444a4ULL));
	size_t n = 0;
	char **urls = members_peer_urls(&m, 0x28d8e5b6ac9c8377ULL, &n);
	EXPECT(n == 1 && urls != NULL && strcmp(urls[0], "http://127.0.0.1:31802") == 0);
	members_free_urls(urls, n);

	char *cu[] = {"http://127.0.0.1:31790"};
	Etcdserverpb__Member attr = ETCDSERVERPB__MEMBER__INIT;
	attr.id = 0x4ccde0faab7444a4ULL;
	attr.name = "m0";
	attr.n_clienturls = 1;
	attr.clienturls = cu;
	EXPECT(members_apply_attr(&m, s, &attr) == DB_OK);
	EXPECT(members_published(&m, attr.id));
	members_close(&m);

	/* Restart: the stored list wins over a different --initial-cluster. */
	EXPECT(members_open(&m, s, "m1=http://elsewhere:1", "other", "m1", NULL, 0, &self, err,
			    sizeof(err)) == 0);
	EXPECT(self == 0x11521e9f1567902eULL && m.cluster_id == 0x91876f752d0ddc5eULL);
	size_t len = 0;
	uint8_t *buf = members_pack(&m, &len);
	Etcdserverpb__MemberListResponse *l =
		etcdserverpb__member_list_response__unpack(NULL, len, buf);
	EXPECT(l != NULL && l->n_members == 3);
	for (size_t i = 0; l && i < l->n_members; i++)
		if (l->members[i]->id == attr.id)
			EXPECT(strcmp(l->members[i]->name, "m0") == 0 && l->members[i]->n_clienturls == 1 &&
			       strcmp(l->members[i]->clienturls[0], cu[0]) == 0);
	etcdserverpb__member_list_response__free_unpacked(l, NULL);
	free(buf);
	members_close(&m);

	db_session_close(s);
	db_close(db);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	EXPECT(system(cmd) == 0);
}

int main(void)
{
	test_ids();
	test_open();
	printf("test_members: %d failures\n", failures);
	return failures != 0;
}
