"""``python -m tests.benchmarks``: run the benchmark suite (see tests/benchmarks/README.md).

``python -m tests.benchmarks --scale [options]`` runs the scale benchmark instead
(:mod:`tests.benchmarks.scale`). Arguments in ``GITHUB_SYNC_BENCH_ARGS`` are appended to the
command line, so that ``make bench GITHUB_SYNC_BENCH_ARGS="--scale ..."`` can choose it.
"""

from __future__ import annotations

import os
import shlex
import sys

from tests.benchmarks.suite import main

if __name__ == "__main__":
    argv = sys.argv[1:] + shlex.split(os.environ.get("GITHUB_SYNC_BENCH_ARGS", ""))
    if "--scale" in argv:
        from tests.benchmarks.scale import main as scale_main

        argv.remove("--scale")
        sys.exit(scale_main(argv))
    sys.exit(main(argv))
