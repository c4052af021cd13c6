"""Errors ptmc reports in one line with exit code 2 (usage or input), never as a traceback."""
from __future__ import annotations

from pathlib import Path

user_files: set[Path] = set()  # every model and property file loaded: where user code lives


class PtmcError(Exception):
    """A problem with what the user gave ptmc: a file, an option, a model."""

    exit_code = 2


class ModelError(PtmcError):
    """A model that is not well formed, or that failed while running one of its steps."""


class OutputError(PtmcError):
    """A file could not be written. The verdict was printed before, and still decides the exit
    code."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, saying where it came (``while loading ...: nothing was checked``)."""


def from_user_code(exc: BaseException) -> PtmcError | None:
    """``exc`` raised by code in a model or property file (or by sys.exit() there), as one line
    naming the file, line and function; None when no such file is on the traceback."""
    where = fn = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if Path(code.co_filename).resolve() in user_files:
            where, fn = f"{code.co_filename}:{tb.tb_lineno}", code.co_name
        tb = tb.tb_next
    if not where:
        return None
    if isinstance(exc, SystemExit):
        call = f"sys.exit({'' if exc.code is None else repr(exc.code)})"
        who = "at import" if fn == "<module>" else f"in {fn}()"
        return PtmcError(f"{where}: {call} called {who}; a model or property file must not exit")
    raised = "" if fn == "<module>" else f"{fn}() raised "
    return PtmcError(f"{where}: {raised}{type(exc).__name__}: {exc}")
