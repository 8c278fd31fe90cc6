"""``python -m tests.benchmarks``: run the benchmark suite (see tests/benchmarks/README.md)."""

from __future__ import annotations

import sys

from tests.benchmarks.suite import main

if __name__ == "__main__":
    sys.exit(main())
