"""The lost update: N threads each do K non-atomic increments of one counter (a read step, then
a write step). The engine-comparison model of bench/: SPIN, the plain-Python BFS and ptmc
explore the same state space (1,202,507 states for incrementers=4, increments=3)."""
from ptmc import DONE, Model, Param, Thread, step


class Incrementer(Thread):
    """x++ as a load and a store, ``increments`` times."""

    tmp: int = 0  # the value read; kept until the next read
    k: int = 0  # increments done

    @step("lib/counter.c:counter_read")
    def read(self, s):
        self.tmp = s.x

    @step("lib/counter.c:counter_write")
    def write(self, s):
        s.x = self.tmp + 1
        self.k += 1
        return "read" if self.k < self.model.increments else DONE


class LostUpdate(Model):
    """N incrementers of one shared counter."""

    incrementers = Param(4, "incrementing threads", minimum=1)
    increments = Param(3, "increments per thread", minimum=1)

    def init(self, mem):
        mem.x = 0

    def threads(self):
        return [Incrementer(f"t{k}") for k in range(self.incrementers)]
