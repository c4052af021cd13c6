"""``ptmc check --events``: the run as a stream of JSON lines on stdout (TLC's ``-tool`` idea),
for editors, CI dashboards and the HTML viewer.

Every line is one JSON object whose ``event`` says what it is; ``elapsed`` is seconds since the
stream started. In order: one ``start``; ``progress`` about once a second while exploring;
then, when the check is violated, one ``violation``; one ``witness`` per witness trace asked
for (``--witness NAME``); one ``file`` per file written; and last one ``result``, the object
``--json`` prints, with the exit code. Errors stay one ``ptmc: error: ...`` line on stderr
(exit 2); a file that cannot be written is such a line too, and the stream ends there
with the verdict's exit code. ``SCHEMA`` below is the schema of every line; docs/events.md describes it.
"""
from __future__ import annotations

import json
import time

from ..limits import resident
from ..result import Result
from . import json as render_json
from . import shown_path

SCHEMA_VERSION = 1

_TRACE = {"type": "array", "items": {
    "type": "object", "required": ["thread", "step", "kernel_function", "changes"],
    "properties": {"thread": {"type": "string"}, "step": {"type": "string"},
                   "kernel_function": {"type": "string"}, "changes": {"type": "object"},
                   "source": {"type": ["object", "null"]}}}}
_LOCATION = {"type": ["object", "null"], "required": ["file", "line"],
             "properties": {"file": {"type": "string"}, "line": {"type": "integer"}}}
_COUNT = {"type": "integer", "minimum": 0}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ptmc check --events: one line",
    "type": "object",
    "required": ["event", "elapsed"],
    "properties": {"event": {"enum": ["start", "progress", "violation", "witness", "file", "result"]},
                   "elapsed": {"type": "number", "minimum": 0}},
    "oneOf": [
        {"properties": {"event": {"const": "start"}, "schema": {"const": SCHEMA_VERSION},
                        "command": {"type": "string"}, "property_file": {"type": "string"}},
         "required": ["schema", "command", "property_file"]},
        {"properties": {"event": {"const": "progress"}, "states": _COUNT, "transitions": _COUNT,
                        "depth": _COUNT, "frontier": _COUNT, "states_per_second": {"type": "number"},
                        "memory": {"type": ["integer", "null"]}},
         "required": ["states", "transitions", "depth", "frontier", "states_per_second", "memory"]},
        {"properties": {"event": {"const": "violation"}, "check": {"type": "string"},
                        "kind": {"type": "string"}, "message": {"type": "string"}, "steps": _COUNT,
                        "location": _LOCATION, "counterexample": _TRACE},
         "required": ["check", "kind", "message", "steps", "location", "counterexample"]},
        {"properties": {"event": {"const": "witness"}, "name": {"type": "string"},
                        "description": {"type": "string"}, "steps": _COUNT, "trace": _TRACE},
         "required": ["name", "description", "steps", "trace"]},
        {"properties": {"event": {"const": "file"}, "path": {"type": "string"}, "format": {"type": "string"}},
         "required": ["path", "format"]},
        {"properties": {"event": {"const": "result"}, "exit_code": {"enum": [0, 1, 3]},
                        "verdict": {"enum": ["holds", "violated", "inconclusive"]},
                        "result": {"type": "object"}},
         "required": ["exit_code", "verdict", "result"]},
    ],
}


class EventStream:
    """Writes events through ``write`` (one line of text each); also the explorer's progress
    callback."""

    def __init__(self, write, clock=time.monotonic):
        self._write, self._clock = write, clock
        self._start = clock()

    def emit(self, event: str, **fields) -> None:
        self._write(json.dumps({"event": event, "elapsed": round(self._clock() - self._start, 3), **fields}))

    def start(self, command: str, property_file) -> None:
        self.emit("start", schema=SCHEMA_VERSION, command=command, property_file=str(property_file))

    def __call__(self, states, transitions, depth, frontier, seconds):
        self.emit("progress", states=states, transitions=transitions, depth=depth, frontier=frontier,
                  states_per_second=round(states / max(seconds, 1e-9), 1), memory=resident())

    def finish(self, *counts) -> None:
        """Nothing to close: the ``result`` event is the summary."""

    def verdict(self, result: Result) -> None:
        """The violation and the witness traces asked for (before any file is written)."""
        v = result.violation
        if v is not None:
            source = result.trace[-1].source if result.trace else None
            self.emit("violation", check=v.check, kind=v.kind, message=v.message, steps=len(result.trace),
                      location={"file": shown_path(source[0]), "line": source[1]} if source else None,
                      counterexample=render_json.trace(result.trace))
        for w in result.witnesses:
            if w.trace is not None:
                self.emit("witness", name=w.name, description=w.description, steps=w.length,
                          trace=render_json.trace(w.trace))

    def files(self, paths) -> None:
        for path in paths:
            self.emit("file", path=str(path), format=path.suffix.lstrip("."))

    def result(self, result: Result) -> None:
        self.emit("result", exit_code=result.exit_code, verdict=result.verdict, result=render_json.to_dict(result))
