"""Same as ``python -m benchmarks.run``: ``python benchmarks/bench_core.py --quick``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
