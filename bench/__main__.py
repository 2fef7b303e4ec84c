"""`python -m bench`: run every benchmark module and print its figures."""

from __future__ import annotations

import importlib
import sys

MODULES = ["bench.reuse_guard", "bench.group", "bench.vc"]


def main() -> int:
    for name in MODULES:
        print(f"== {name} ==")
        module = importlib.import_module(name)
        module.main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
