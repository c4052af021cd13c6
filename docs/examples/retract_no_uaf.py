"""A retracted PTE table is not freed under a reader (docs/authoring.md's example).

No reader reads an entry of the table, or takes its lock, after the table was freed; nothing is
freed twice; and when everything has finished, the table was freed exactly once and nr_ptes
counts no table.
"""
from ptmc.kernel.pgtable import allocated_pages
from ptmc.properties import at_end, never

MODEL = "retract.py"


def freed_once(s):
    """At the end no PTE page is allocated and mm->nr_ptes is 0."""
    if allocated_pages(s) or s.nr_ptes:
        return f"pages {allocated_pages(s)} still allocated, nr_ptes {s.nr_ptes}"
    return True


CHECKS = [never("use-after-free"), never("double-free"), at_end(freed_once, needs=("nr_ptes",))]
