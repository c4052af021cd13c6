"""Both increments are counted."""
from ptmc.properties import at_end

MODEL = "guards.py"


def both_counted(s):
    """x == 2 at the end"""
    return True if s.x == 2 else f"x is {s.x}"


CHECKS = [at_end(both_counted)]
