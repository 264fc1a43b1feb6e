"""``cj``: run notebooks into a run folder, or list their parameters.

    cj run [NOTEBOOK ...] [-f params.yaml] [-p key=value ...] [--out DIR] [--with-code]
    cj list [NOTEBOOK ...]

Exit status: 0 when every notebook ran, 1 when one failed (each named with its reason), 2 for a bad
command line or parameter (nothing runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cjlib.report.params import ParameterError, load_yaml, notebook_parameters, parse_pairs
from cjlib.report.runner import find_notebooks, run_notebooks

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cj", description="cjlib notebooks and reports")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run notebooks and write a run folder")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: all)")
    run.add_argument("-f", "--file", help="YAML file of parameters")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override, value read as YAML (wins over -f)",
    )
    run.add_argument("--out", default="reports", help="folder for run folders (default reports)")
    run.add_argument("--with-code", action="store_true", help="also write HTML with code")
    run.add_argument("--run-id", help="name of the run folder (default: UTC time stamp)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    lst = sub.add_parser("list", help="list notebooks and their parameters")
    lst.add_argument("notebooks", nargs="*", help="notebooks (default: all)")
    return parser


def _list(names: Sequence[str]) -> int:
    for path in find_notebooks(names):
        print(f"{path.stem}  ({path})")
        for p in notebook_parameters(path).values():
            print(f"  {p.name}: {p.type} = {p.default!r}  # {p.help}")
        print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.notebooks)
        params = load_yaml(args.file) if args.file else {}
        params.update(parse_pairs(args.param))
        result = run_notebooks(
            args.notebooks or None,
            out=args.out,
            parameters=params,
            with_code=args.with_code,
            run_id=args.run_id,
            progress=not args.no_progress,
        )
    except (ParameterError, FileNotFoundError, FileExistsError) as exc:
        print(f"cj: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {result.folder}  (open {result.folder / 'index.html'})")
    for name, why in result.failures.items():
        print(f"FAILED {name}: {why}", file=sys.stderr)
    return 1 if result.failures else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
