"""No deadlock, and no lock released that is not held.

No state in which a thread that has not finished can never move again: no cycle of threads
each waiting for a lock another holds (the ptl -> pml order of the reclaim fast path is why it
may only spin_trylock the pmd lock), and no thread taking a lock it already holds (with
CONFIG_SPLIT_PTE_PTLOCKS off, ptl and pml are the same lock, which every "ptl != pml" branch of
the code must respect). And no thread releases a lock it does not hold: with ptl == pml, an
abort path that unlocks "both" locks unlocks the same lock twice. Nor does a thread take a
sleeping lock (an rwsem such as mmap_lock, the folio lock) in atomic context: holding a
spinlock, with IRQs disabled, or inside an RCU read-side section that may not sleep.
"""
from ptmc.properties import deadlock_free, never

MODEL = "../model/reclaim.py"
MODELS = ["../model/refcount2021.py"]

CHECKS = [never("self-deadlock"), never("bad-unlock"), never("sleep-in-atomic"), deadlock_free()]
