"""The high-availability tests drive the failover drill's own parts (``benchmarks/failover*.py``,
scripts that import each other by their plain names), so its folder is on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
