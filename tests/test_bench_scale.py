"""bench/scale.py keeps running: two tiny sizes, every table printed with positive figures. Its
timings are not checked (a benchmark is not a timed test)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_scale_benchmark_prints_its_tables_and_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "bench/scale.py", "--sizes", "2000,4000", "--queries", "20"]
        + ["--window", "1000", "--hnsw-min-points", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    for title in ("### Upserts", "### Queries", "### Memory and disk", "### optimize()"):
        assert title in out
    rows = {
        table: [
            line
            for line in out.split(table)[1].split("###")[0].splitlines()
            if re.match(r"\| [\d,]+ \|", line)
        ]
        for table in ("### Upserts", "### Queries", "### Memory and disk", "### optimize()")
    }
    assert [len(r) for r in rows.values()] == [2, 4, 2, 2]  # queries: plain and HNSW per size
    for line in [row for table in rows.values() for row in table]:
        numbers = [float(n.replace(",", "")) for n in re.findall(r"[\d,]*\d(?:\.\d+)?", line)]
        assert numbers and all(n > 0 for n in numbers), line
    assert re.search(r"upsert rate @4,000 / rate @2,000: \d+\.\d\d", out)
    assert re.search(r"hybrid p95 @4,000: \d+\.\d ms as loaded, \d+\.\d ms with HNSW", out)
    assert "recall" in out and "load average at end" in out
