"""PyParrot's benchmark harness: ``python -m bench [--quick] [--out PATH]``.

Every figure is a ratio taken in one run against a baseline measured beside it (never an
absolute timing assertion), because these machines are shared and noisy.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = REPO / "docs" / "BENCHMARKS.md"
