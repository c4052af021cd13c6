"""adjust_pte() neither takes a ptl its thread holds nor dereferences a missing vmf (K5)."""
from ptmc.properties import deadlock_free, never

MODEL = "k5_adjust_pte.py"

CHECKS = [never("self-deadlock"), never("null-deref"), never("bad-unlock"), deadlock_free()]
