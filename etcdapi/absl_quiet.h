/*
 * etcdapi/absl_quiet.h — switch off Abseil's mutex deadlock detector, for
 * metad and for metad-bench (header-only: the two share no library).
 *
 * Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
 * detector on: every lock gRPC takes records a stack trace and updates a
 * process-wide lock graph behind one global lock (3-5% of metad's CPU and
 * ~10% of metad-bench's under a 1,000-client put load). It checks gRPC's own
 * locking, not ours. Call before grpc_init.
 */
#ifndef METAD_ETCDAPI_ABSL_QUIET_H
#define METAD_ETCDAPI_ABSL_QUIET_H

#include <dlfcn.h>
#include <stddef.h>

/* Through the C++ entry point, looked up so that a differently built Abseil
 * (no such symbol) simply keeps its default. */
static inline void absl_deadlock_detection_off(void)
{
	static const char *const names[] = {
		"_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
		"_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void (*set_mode)(int);
		*(void **)&set_mode = dlsym(RTLD_DEFAULT, names[i]);
		if (set_mode != NULL) {
			set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
			return;
		}
	}
}

#endif
