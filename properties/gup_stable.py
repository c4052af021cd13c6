"""A page GUP-fast returned is still the page mapped there, or GUP-fast backed off.

pin_user_pages_fast() walks the page tables with no lock at all: it reads the pmd and the entry,
raises the folio's refcount (a pin), then reads both again and gives the pin back if either
changed. Whoever changes the mapping relies on that: an anon collapse (collapse_huge_page())
clears the pmd first, then checks that no page of the table has references its mappings do not
explain, copies the pages into a THP and frees them. A GUP-fast that grabbed a page after that
check and still returned it pins a page that is no longer mapped there: the caller's DMA writes
go to a page the process will never see again (protocol.md K2, fixed by 70cbc3cc78a9, which
added the recheck of the pmd after the grab). The ghost check (``gup-stale-page``, reported by
ptmc.actors.gup when GUP-fast returns a pinned page, and again when its caller unpins it) is that
the folio was not discarded (freed, or replaced by a copy) while the pin it returned was held
(protocol.md A7). A page unmapped by a zap while pinned is not stale: the pin keeps it, and the
process simply no longer maps it.

By default it runs GUP-fast and one collapse against zap and fault (``PARAMS``: no walker or
reader, which neither pin nor replace pages); ``--set walkers=1 --set readers=1`` adds them
(4,032,312 states, two minutes, 4 GB).
"""
from ptmc.properties import never

MODEL = "../model/reclaim.py"
PARAMS = {"gup_fast": 1, "anon_collapses": 1, "walkers": 0, "readers": 0}

CHECKS = [never("gup-stale-page")]
