"""No retired object is used."""
from ptmc.properties import never

MODEL = "guards.py"
CHECKS = [never("stale-use")]
