"""The fault schedule of a run and the thread that applies it.

The schedule is a pure function of the seed: a list of (start, kind, target,
length). A target is a member name or "leader", resolved when the fault
starts (which member leads then depends on timing, the rest does not). One
fault at a time, and the next starts only once the previous target serves
linearizable reads again, so at most one member of three is ever faulty.
"""

import random
import threading
import time

KINDS = ("kill", "pause", "isolate", "isolate_out", "isolate_in")
WEIGHTS = (3, 3, 3, 1, 1)
RECOVER_DEADLINE = 25.0   # a healed member serves again within this


def schedule(seed, duration, members=("m0", "m1", "m2")):
    rng = random.Random("nemesis/%s" % seed)
    out = []
    t = rng.uniform(1.0, 2.0)
    # The last fault heals at least a second before the clients stop, so each
    # run also checks that the cluster serves again after its last fault.
    while True:
        length = rng.uniform(0.8, 4.0)
        if t + length > duration - 1.0:
            break
        kind = rng.choices(KINDS, weights=WEIGHTS)[0]
        target = "leader" if rng.random() < 0.5 else rng.choice(members)
        out.append((round(t, 3), kind, target, round(length, 3)))
        t += length + rng.uniform(0.5, 2.5)
    return out


class Nemesis(threading.Thread):
    def __init__(self, cluster, rec, plan):
        super().__init__(daemon=True, name="nemesis")
        self.c = cluster
        self.rec = rec
        self.plan = plan
        self.abort = threading.Event()
        self.problems = []      # liveness failures, reported by the run
        self.applied = []
        self.t_base = 0.0       # recorder time the schedule counts from
        self.end = None         # recorder time by which every fault is healed
        self.error = None

    def log(self, action, m, **kw):
        r = {"type": "fault", "action": action, "member": m.name if m else None,
             "t": self.rec.now()}
        r.update(kw)
        self.rec.write(r)

    def run(self):
        try:
            self._run()
        except Exception as e:
            self.error = repr(e)
            raise

    def _wait_until(self, t):
        # Paces the schedule; the abort event ends the wait early.
        delay = self.rec.t0 + self.t_base + t - time.monotonic()
        if delay > 0:
            self.abort.wait(delay)

    def _run(self):
        for start, kind, target, length in self.plan:
            self._wait_until(start)
            if self.abort.is_set():
                return
            if self.end is not None and self.rec.now() + length > self.end:
                # A slow recovery put the schedule behind: a fault that would
                # outlast the clients tests nothing.
                self.log("skipped", None, kind=kind, target=target, length=length)
                continue
            name = self.c.leader_name() if target == "leader" else target
            m = self.c.by_name[name or "m0"]
            self.log(kind, m, target=target, length=length)
            self.applied.append((kind, target, m.name))
            if kind == "kill":
                self.c.kill(m)
            elif kind == "pause":
                self.c.pause(m)
            elif kind == "isolate":
                self.c.isolate(m)
            elif kind == "isolate_out":
                self.c.isolate(m, inbound=False)
            elif kind == "isolate_in":
                self.c.isolate(m, outbound=False)
            self.abort.wait(length)     # the fault lasts this long
            self.heal(m, kind)
            if not self.recovered(m):
                return

    def heal(self, m, kind):
        if kind == "kill":
            self.c.restart(m)
        elif kind == "pause":
            self.c.cont(m)
        else:
            self.c.heal()
        self.log("heal", m, kind=kind)

    def recovered(self, m):
        """Poll until m serves a linearizable read; a member that does not is
        a liveness failure the run reports."""
        end = time.monotonic() + RECOVER_DEADLINE
        while time.monotonic() < end:
            if m.died_unexpectedly():
                self.problems.append("%s exited on its own (status %s)"
                                     % (m.name, m.proc.returncode))
                return False
            try:
                self.c.wait_serving(m, deadline=1.0)
                self.log("recovered", m)
                return True
            except Exception:
                pass
            if self.abort.is_set():
                return False
        self.problems.append("%s did not serve linearizable reads within %.0fs of being healed"
                             % (m.name, RECOVER_DEADLINE))
        return False
