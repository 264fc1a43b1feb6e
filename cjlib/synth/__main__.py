"""``python -m cjlib.synth --out data --customers 5000 --seed 42``: write a synthetic data set."""

from __future__ import annotations

import argparse

from .api import write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cjlib.synth", description=__doc__)
    parser.add_argument("--out", required=True, help="folder to write (must be empty or absent)")
    parser.add_argument("--customers", type=int, default=5_000, help="number of customers")
    parser.add_argument("--seed", type=int, default=42, help="random_state")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    files = write(
        args.out,
        args.customers,
        random_state=args.seed,
        fmt=args.format,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
