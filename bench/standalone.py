"""Running one benchmark alone, ``python -m bench.NAME [--quick] [--out PATH]``, with the
header, load figures and section markers that ``python -m bench`` gives it."""

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench import machine, report

C = TypeVar("C")
R = TypeVar("R")


def main(
    name: str,
    configs: tuple[C, C],
    run: Callable[[C], R],
    render: Callable[[R, str], str],
    argv: list[str] | None = None,
) -> int:
    """Run section ``name`` with the (quick, full) ``configs``; print it, and write it into
    ``--out`` if given (never into docs/BENCHMARKS.md by default)."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--quick", action="store_true", help="few samples, for orientation")
    parser.add_argument("--out", type=Path, help="markdown file whose section to refresh")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    quick, full = configs
    command = " ".join([f"python -m bench.{name}", *argv])
    mode = " (quick mode: few samples, for orientation only)" if args.quick else ""
    load_before = machine.load_average()
    if load_before > (os.cpu_count() or 1) / 2:
        print(f"bench: the machine is busy (load {load_before:.2f})", file=sys.stderr)
    header = f"{machine.describe().markdown()}\nCommand: `{command}`{mode}."
    body = render(run(quick if args.quick else full), header)
    body += (
        f"\n\nLoad average (1 min): {load_before:.2f} before this benchmark, "
        f"{machine.load_average():.2f} after it (its own processes included)."
    )
    print(body, flush=True)
    if args.out is not None:
        report.write_section(args.out, name, body)
        print(f"bench: wrote section {name!r} to {args.out}", file=sys.stderr)
    return 0
