/*
 * core/errors.h — the errors a request can end with, as etcd names them.
 *
 * One X-macro table: code, gRPC status code (numeric, so core stays free of
 * gRPC headers) and etcd's exact message. Clients match on the message text
 * (clientv3's errStringToError), so the strings must not change.
 */
#ifndef METAD_CORE_ERRORS_H
#define METAD_CORE_ERRORS_H

/* gRPC status codes used below (values fixed by the gRPC spec). */
#define CORE_GRPC_UNKNOWN 2
#define CORE_GRPC_INVALID_ARGUMENT 3
#define CORE_GRPC_NOT_FOUND 5
#define CORE_GRPC_RESOURCE_EXHAUSTED 8
#define CORE_GRPC_FAILED_PRECONDITION 9
#define CORE_GRPC_OUT_OF_RANGE 11
#define CORE_GRPC_UNIMPLEMENTED 12
#define CORE_GRPC_INTERNAL 13
#define CORE_GRPC_UNAVAILABLE 14
#define CORE_GRPC_PERMISSION_DENIED 7
#define CORE_GRPC_UNAUTHENTICATED 16
#define CORE_GRPC_DATA_LOSS 15

#define CORE_ERRORS(X)                                                                             \
	X(CORE_EKEY_NOT_PROVIDED, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: key is not provided")   \
	X(CORE_EKEY_NOT_FOUND, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: key not found")            \
	X(CORE_EVALUE_PROVIDED, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: value is provided")       \
	X(CORE_ELEASE_PROVIDED, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: lease is provided")       \
	X(CORE_ETOO_MANY_OPS, CORE_GRPC_INVALID_ARGUMENT,                                          \
	  "etcdserver: too many operations in txn request")                                        \
	X(CORE_EDUPLICATE_KEY, CORE_GRPC_INVALID_ARGUMENT,                                         \
	  "etcdserver: duplicate key given in txn request")                                        \
	X(CORE_ECOMPACTED, CORE_GRPC_OUT_OF_RANGE,                                                 \
	  "etcdserver: mvcc: required revision has been compacted")                                \
	X(CORE_EFUTURE_REV, CORE_GRPC_OUT_OF_RANGE,                                                \
	  "etcdserver: mvcc: required revision is a future revision")                              \
	X(CORE_ENOSPACE, CORE_GRPC_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded") \
	X(CORE_EREQUEST_TOO_LARGE, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: request is too large") \
	X(CORE_ETOO_MANY_REQUESTS, CORE_GRPC_UNKNOWN, "etcdserver: too many requests")             \
	X(CORE_ELEASE_NOT_FOUND, CORE_GRPC_NOT_FOUND, "etcdserver: requested lease not found")     \
	X(CORE_ELEASE_EXISTS, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: lease already exists")   \
	X(CORE_ELEASE_TTL_TOO_LARGE, CORE_GRPC_OUT_OF_RANGE, "etcdserver: too large lease TTL")    \
	X(CORE_ESTOPPED, CORE_GRPC_UNAVAILABLE, "etcdserver: server stopped")                      \
	X(CORE_ETIMEOUT, CORE_GRPC_UNAVAILABLE, "etcdserver: request timed out")                   \
	X(CORE_ENO_LEADER, CORE_GRPC_UNAVAILABLE, "etcdserver: no leader")                         \
	X(CORE_ENOT_LEADER, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: not leader")               \
	X(CORE_EBAD_TRANSFEREE, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: bad leader transferee") \
	X(CORE_ETRANSFER_TIMEOUT, CORE_GRPC_UNAVAILABLE,                                           \
	  "etcdserver: request timed out, leader transfer took too long")                          \
	X(CORE_EPEER_URL_EXISTS, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: Peer URLs already exists") \
	X(CORE_EMEMBER_NOT_FOUND, CORE_GRPC_NOT_FOUND, "etcdserver: member not found")             \
	X(CORE_EMEMBER_BAD_URLS, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: given member URLs are invalid") \
	X(CORE_ENOT_ENOUGH_STARTED, CORE_GRPC_FAILED_PRECONDITION,                                 \
	  "etcdserver: re-configuration failed due to not enough started members")                 \
	X(CORE_ENOT_LEARNER, CORE_GRPC_FAILED_PRECONDITION,                                        \
	  "etcdserver: can only promote a learner member")                                         \
	X(CORE_ELEARNER_NOT_READY, CORE_GRPC_FAILED_PRECONDITION,                                  \
	  "etcdserver: can only promote a learner member which is in sync with leader")            \
	X(CORE_ETOO_MANY_LEARNERS, CORE_GRPC_FAILED_PRECONDITION,                                  \
	  "etcdserver: too many learner members in cluster")                                       \
	X(CORE_EUNHEALTHY, CORE_GRPC_UNAVAILABLE, "etcdserver: unhealthy cluster")                 \
	X(CORE_ELEARNER_RPC, CORE_GRPC_UNAVAILABLE, "etcdserver: rpc not supported for learner")   \
	X(CORE_EPROPOSAL_DROPPED, CORE_GRPC_UNKNOWN, "raft proposal dropped")                      \
	X(CORE_ENOMEM, CORE_GRPC_RESOURCE_EXHAUSTED, "etcdserver: out of memory")                  \
	X(CORE_EINTERNAL, CORE_GRPC_INTERNAL, "etcdserver: internal error")                        \
	CORE_AUTH_ERRORS(X)

/* The auth store's errors (core/auth*.c), with etcd's codes and texts. */
#define CORE_AUTH_ERRORS(X)                                                                        \
	X(CORE_EROOT_USER_NOT_EXIST, CORE_GRPC_FAILED_PRECONDITION,                                \
	  "etcdserver: root user does not exist")                                                  \
	X(CORE_EROOT_ROLE_NOT_EXIST, CORE_GRPC_FAILED_PRECONDITION,                                \
	  "etcdserver: root user does not have root role")                                         \
	X(CORE_EUSER_EXISTS, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: user name already exists") \
	X(CORE_EUSER_EMPTY, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: user name is empty")          \
	X(CORE_EUSER_NOT_FOUND, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: user name not found")  \
	X(CORE_EROLE_EXISTS, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: role name already exists") \
	X(CORE_EROLE_NOT_FOUND, CORE_GRPC_FAILED_PRECONDITION, "etcdserver: role name not found")  \
	X(CORE_EROLE_EMPTY, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: role name is empty")          \
	X(CORE_EAUTH_FAILED, CORE_GRPC_INVALID_ARGUMENT,                                           \
	  "etcdserver: authentication failed, invalid user ID or password")                        \
	X(CORE_ENO_PASSWORD_USER, CORE_GRPC_UNKNOWN,                                               \
	  "auth: authentication failed, password was given for no password user")                  \
	X(CORE_EPERMISSION_NOT_GIVEN, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: permission not given") \
	X(CORE_EPERMISSION_DENIED, CORE_GRPC_PERMISSION_DENIED, "etcdserver: permission denied")   \
	X(CORE_EROLE_NOT_GRANTED, CORE_GRPC_FAILED_PRECONDITION,                                   \
	  "etcdserver: role is not granted to the user")                                           \
	X(CORE_EPERMISSION_NOT_GRANTED, CORE_GRPC_FAILED_PRECONDITION,                             \
	  "etcdserver: permission is not granted to the role")                                     \
	X(CORE_EAUTH_NOT_ENABLED, CORE_GRPC_FAILED_PRECONDITION,                                   \
	  "etcdserver: authentication is not enabled")                                             \
	X(CORE_EINVALID_AUTH_TOKEN, CORE_GRPC_UNAUTHENTICATED, "etcdserver: invalid auth token")   \
	X(CORE_EINVALID_AUTH_MGMT, CORE_GRPC_INVALID_ARGUMENT, "etcdserver: invalid auth management") \
	X(CORE_EAUTH_OLD_REVISION, CORE_GRPC_INVALID_ARGUMENT,                                     \
	  "etcdserver: revision of auth store is old")                                             \
	CORE_OPS_ERRORS(X)

/* Alarms (core/alarm.c). Appended: codes travel between members. */
#define CORE_OPS_ERRORS(X) X(CORE_ECORRUPT, CORE_GRPC_DATA_LOSS, "etcdserver: corrupt cluster")

enum {
	CORE_OK = 0,
	CORE_ERR_FIRST_ = 0, /* codes start at 1 */
#define CORE_ENUM_(name, code, msg) name,
	CORE_ERRORS(CORE_ENUM_)
#undef CORE_ENUM_
	CORE_ERR_COUNT_
};

/* etcd's message for a CORE_E* code ("" for CORE_OK). */
const char *core_strerror(int err);
/* gRPC status code for a CORE_E* code (0 for CORE_OK). */
int core_grpc_code(int err);

#endif
