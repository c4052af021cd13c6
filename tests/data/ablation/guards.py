"""Three guards of known necessity, for ptmc ablate's test: a lock that property counts needs,
a recheck that property fresh needs, and a redundant check that neither needs."""
from ptmc import DONE, Model, Thread, step
from ptmc.kernel.spinlock import spin_lock, spin_unlock, spinlock_init
from ptmc.model import Guard


class Incrementer(Thread):
    """x++ under a lock: a read step and a write step."""

    tmp: int = 0
    counter_lock = Guard("x++ is a read and a write: without the lock an update is lost",
                         without="read and write x with no lock")
    sane_value = Guard("x is never negative (redundant: nothing makes it negative)",
                       without="increment without looking")

    @step("lib/counter.c:lock")
    def lock(self, s):
        if self.counter_lock:
            spin_lock(s, "lock")

    @step("lib/counter.c:read")
    def read(self, s):
        self.tmp = s.x
        if self.sane_value and self.tmp < 0:
            return "unlock"

    @step("lib/counter.c:write")
    def write(self, s):
        s.x = self.tmp + 1

    @step("lib/counter.c:unlock")
    def unlock(self, s):
        if self.counter_lock:  # a lock not taken is not released
            spin_unlock(s, "lock")
        return DONE


class User(Thread):
    """Reads a pointer's validity, then uses it: the recheck keeps it from using a stale one."""

    seen: bool = False
    revalidate = Guard("the object may be retired between the lookup and the use",
                       without="use what the lookup found", against="a retirer")

    @step("lib/obj.c:lookup")
    def lookup(self, s):
        self.seen = s.valid

    @step("lib/obj.c:use")
    def use(self, s):
        if self.seen and not s.valid:
            if self.revalidate:
                return DONE  # retired meanwhile: back off
            s.report("stale-use", f"{s.actor} uses a retired object")
        return DONE


class Retirer(Thread):
    @step("lib/obj.c:retire")
    def retire(self, s):
        s.valid = False
        return DONE


class Guards(Model):
    """Two incrementers, a user and a retirer."""

    EVENTS = {"stale-use": "an object used after it was retired"}

    def init(self, mem):
        mem.x = 0
        mem.valid = True
        spinlock_init(mem, "lock")

    def threads(self):
        return [Incrementer("a"), Incrementer("b"), User("user"), Retirer("retirer")]
