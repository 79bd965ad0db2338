"""Rewrite the README's table of the regression tier from tests/baselines/sb3/*.json, so that a stored
baseline is listed with its seeds, budget and estimated duration as soon as it is added.

    .venv/bin/python scripts/regression_table.py          # rewrite the table in README.md
    .venv/bin/python scripts/regression_table.py --check  # exit 1 if the README's table is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robotrl.sb3.stored import list_baselines, regression_table

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- regression-table: written by scripts/regression_table.py from tests/baselines/sb3/*.json -->"
END = "<!-- regression-table end -->"


def with_table(text: str, table: str) -> str:
    """`text` with the block between the START and END markers replaced by `table`."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"README.md needs one {START!r} line followed by one {END!r} line")
    head, rest = text.split(START)
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/regression_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the table is stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    updated = with_table(text, regression_table(list_baselines()))
    if args.check:
        if updated != text:
            print("README.md's regression table is stale: run .venv/bin/python scripts/regression_table.py",
                  file=sys.stderr)
            return 1
        return 0
    if updated != text:
        README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
