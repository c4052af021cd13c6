"""Regenerate what the docs quote from commands: docs/protocol.md (ptmc doc model/reclaim.py)
and README's verdict table (ptmc list --verdicts). tests/test_docs.py fails until this is run."""
import re
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def ptmc(*args) -> str:
    return subprocess.run([sys.executable, "-m", "ptmc", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout


(root / "docs" / "protocol.md").write_text(ptmc("doc", "model/reclaim.py"))
readme = root / "README.md"
table = ptmc("list", "--verdicts")
readme.write_text(re.sub(r"<!-- verdicts -->\n.*?<!-- /verdicts -->",
                         lambda _: f"<!-- verdicts -->\n{table}<!-- /verdicts -->",
                         readme.read_text(), flags=re.S))
print("updated docs/protocol.md and README.md")
