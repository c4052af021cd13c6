"""The ``ptmc`` command and ``python -m ptmc``. Signals and the memory reserve are set up before
the heavy imports (networkx, z3), so that a Ctrl-C at any moment ends with exit code 3."""
import sys

from . import limits


def run() -> None:
    limits.install()
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("ptmc: interrupted while starting: nothing was checked", file=sys.stderr)
        sys.exit(3)
    main(prog_name="ptmc")


if __name__ == "__main__":
    run()
