"""The lost-update model of bench/models/lost_update.py, checked deadlock-free: the engine
comparison row (SPIN and the plain-Python BFS explore the same state space)."""
from ptmc.properties import deadlock_free

MODEL = "models/lost_update.py"
CHECKS = [deadlock_free()]
