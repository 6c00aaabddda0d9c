"""Writing benchmark sections into a markdown file between per-benchmark markers.

Each benchmark owns the text between ``<!-- bench:NAME:start -->`` and
``<!-- bench:NAME:end -->``; refreshing one section leaves the rest of the file (other
benchmarks, hand-written analysis) untouched. A missing section is appended.
"""

from collections.abc import Sequence
from pathlib import Path

HEADER = """# Benchmarks

Figures written by the harness in `bench/` (`python -m bench`); each section is refreshed in
place between its markers, so text outside the markers is kept. Every goal is checked as a
ratio against a baseline measured in the same run, never as an absolute time.
"""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a section."""
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(document: str, name: str, body: str) -> str:
    """``document`` with section ``name`` set to ``body`` (appended if absent)."""
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    head, found, rest = document.partition(start)
    if found:
        _old, closed, tail = rest.partition(end)
        if not closed:
            raise ValueError(f"{start} has no matching {end}")
        return head + block + tail
    return document.rstrip() + "\n\n" + block + "\n"


def write_section(path: Path, name: str, body: str) -> None:
    """Create or refresh section ``name`` of the markdown file at ``path``."""
    document = path.read_text() if path.is_file() else HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(replace_section(document, name, body))
    tmp.replace(path)
