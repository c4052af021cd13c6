"""K5: arm adjust_pte() and lock identity (protocol.md section 4, K5; the model is
corpus/models/k5_adjust_pte.py)."""
from ptmc.regress import Entry

PROPERTY = "models/k5_no_deadlock.py"

ENTRIES = [
    Entry("k5-null-vmf", "K5",
          "fc9c45b71f43 decided with ptl != vmf->ptl; remove_migration_pte() passes no vmf (fixed by Qi Zheng, "
          "Feb 2025, 'arm: pgtable: fix NULL pointer dereference issue')",
          PROPERTY, "violated", variants=("vmf_ptl_compare",), settings={"caller": "migration"},
          check="never null-deref", threads=("fault",), shape=(("fault", "lock"), ("fault", "adjust_lock"))),
    Entry("k5-alias-in-same-table", "K5",
          "locking whenever PTE ptlocks are split takes the caller's own ptl for an alias in the same table",
          PROPERTY, "violated", variants=("lock_if_split",), check="never self-deadlock", threads=("fault",),
          shape=(("fault", "lock"), ("fault", "adjust_lock"))),
    Entry("k5-fixed-same-table", "K5",
          "the fix: lock only with split PTE ptlocks and an alias outside the caller's PMD-aligned range",
          PROPERTY, "holds", settings={"caller": "migration"}),
    Entry("k5-fixed-other-table", "K5", "the fix, alias in another table: its own ptl is taken, nested",
          PROPERTY, "holds", settings={"alias": "other_table"}),
    Entry("k5-fixed-not-split", "K5", "the fix without split PTE ptlocks: every ptl is the one already held",
          PROPERTY, "holds", settings={"alias": "other_table", "split_ptlocks": "false"}),
]
