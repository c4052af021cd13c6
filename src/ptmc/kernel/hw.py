"""The hardware: one CPU's MMU walking the page tables of the mm at any moment.

A ``HardwareWalker`` is the page walker of one CPU that runs the mm (in user mode, or lazily in
the kernel): between any two steps of any thread it may walk an address, either fresh (read the
pmd, and through the PTE page it links, the entry) or through a table walk its paging-structure
cache kept (read the entry of the cached PTE page without reading the pmd), and cache what it
found: the table walk, and a leaf translation when the entry is present (or the huge pmd).
Nothing is evicted: a cache that only grows until a flush has every behaviour of one that also
forgets entries, since a forgotten entry can always be walked again. It only takes a step that
caches something new, so it never masks a deadlock, and it is a daemon (never "unfinished").

What it checks (ptmc.kernel.tlb): a PTE page freed while its cache still holds a walk through it
("hw-walk-free-table", reported by pte_free()), and a translation cached through a different
PTE page or page size than one it still holds for the same address ("tlb-incoherent").

It walks every pmd slot of the model; with ``hw_walkers=0`` (what the models default to) none
runs and the ghost of ptmc.kernel.tlb stands for every CPU.
"""
from ..model import Thread, step
from ..state import Blocked
from .pgtable import PT, address, pmd_slots, pmd_table, pmd_trans_huge, ptrs_per_pte
from .pte import pte_present
from .tlb import psc_fill, tlb_fill


class HardwareWalker(Thread):
    """A CPU's MMU: walks the page tables at any time and caches translations and table walks."""

    daemon = True

    def __init__(self, cpu: int):
        super().__init__(f"cpu{cpu}")
        self.cpu = cpu

    def requires(self):
        return super().requires() + [(f"cpu{self.cpu}.tlb", "cpu_caches_init(mem, cpus=...) with enough CPUs")]

    def _walks(self, s) -> list:
        """Every walk that would cache something new: (label, slot index, table, entry or None,
        page or None, size)."""
        n = ptrs_per_pte(s)
        psc = s.load(f"cpu{self.cpu}.psc")
        tlb = s.load(f"cpu{self.cpu}.tlb")
        out = []
        for k, slot in enumerate(pmd_slots(s)):
            pmdval = s.load(slot)
            if pmd_trans_huge(pmdval):
                entry = (address(s, 0, slot), n, None, pmdval[0])
                if entry not in tlb:
                    out.append((f"{slot}: huge pmd", k, None, None, pmdval[0], n))
            elif pmd_table(pmdval):
                for i in range(n):
                    pte = s.load(pmdval.entry(i))
                    page = pte[0] if pte_present(pte) else None
                    cached = page is None or (address(s, i, slot), 1, pmdval, page) in tlb
                    if (k, pmdval) not in psc or not cached:
                        out.append((f"{slot}: e{i} through the pmd", k, pmdval, i, page, 1))
        for k, table in psc:
            if table.__class__ is not PT or table.field("e0").stale(s):
                continue  # freed under the cache: pte_free() reported it (hw-walk-free-table)
            slot = pmd_slots(s)[k]
            for i in range(n):
                pte = s.load(table.entry(i))
                if pte_present(pte) and (address(s, i, slot), 1, table, pte[0]) not in tlb:
                    out.append((f"{slot}: e{i} through cached {table}", k, table, i, pte[0], 1))
        return out

    @step("hardware:page_walk")
    def walk(self, s):
        walks = self._walks(s)
        if not walks:
            raise Blocked  # every translation it can reach is cached
        label = s.choose("walk", [w[0] for w in walks])
        _, k, table, i, page, size = next(w for w in walks if w[0] == label)
        slot = pmd_slots(s)[k]
        if table is not None:
            psc_fill(s, self.cpu, k, table)
        if page is not None:
            tlb_fill(s, self.cpu, address(s, i or 0, slot), size, table, page)
        return "walk"
