"""Errors ptmc reports in one line with exit code 2 (usage or input), never as a traceback."""


class PtmcError(Exception):
    """A problem with what the user gave ptmc: a file, an option, a model."""


class ModelError(PtmcError):
    """A model that is not well formed, or that failed while running one of its steps."""
