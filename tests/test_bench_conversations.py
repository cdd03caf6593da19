"""bench/conversations.py keeps running: two tiny sizes, its own correctness checks passing and a
ratio printed for each. Its timings are not checked (a benchmark is not a timed test)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_conversation_search_benchmark_checks_and_prints_a_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "bench/conversations.py", "--sizes", "40,200", "--messages", "3"]
        + ["--repeat", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = re.findall(
        r"^\s+(40|200)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+(\d+)\s+(\d+)$", done.stdout, re.M
    )
    assert [size for size, _, _ in rows] == ["40", "200"], done.stdout
    assert all(int(found) == min(int(planted), 20) for _, found, planted in rows), done.stdout
