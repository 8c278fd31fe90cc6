"""``python -m tests.benchmarks``: run the benchmark suite (see tests/benchmarks/README.md).

``python -m tests.benchmarks --scale [options]`` runs the scale benchmark instead
(:mod:`tests.benchmarks.scale`); ``make bench BENCH_ARGS="--scale ..."`` does the same.
"""

from __future__ import annotations

import sys

from tests.benchmarks.suite import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--scale" in argv:
        from tests.benchmarks.scale import main as scale_main

        argv.remove("--scale")
        sys.exit(scale_main(argv))
    sys.exit(main(argv))
