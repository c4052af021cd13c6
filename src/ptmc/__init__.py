"""ptmc: explicit-state model checking of the Linux kernel's page-table reclaim protocol.

The authoring API a model file needs is re-exported here; kernel primitives live in
``ptmc.kernel``.
"""
from .model import DONE, Model, Param, Thread, Variant, numbered, step
from .state import Blocked

__all__ = ["DONE", "Blocked", "Model", "Param", "Thread", "Variant", "numbered", "step"]
