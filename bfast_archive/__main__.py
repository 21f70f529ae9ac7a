"""Command line: ``python -m bfast_archive <command>`` (also ``bfast-archive``)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bfast-archive",
                                     description="Zero-copy archives for Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write a few hundred MB, then time open + read one "
                                       "field against pickle.load (under a minute)")
    demo.add_argument("--runs", type=int, default=3, help="fresh-process runs per reader")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run(runs=args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
