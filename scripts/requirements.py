"""Print the requirements of PyParrot's core plus the given extras, one per line, read from
pyproject.toml. The Dockerfile installs them before it copies the source, so a code change
reuses the dependency layers. Usage: python requirements.py [EXTRA ...] > requirements.txt
(the standard library only: it runs in a bare python image)."""

import re
import sys
import tomllib
from pathlib import Path


def requirements(project: dict, extras: list[str]) -> list[str]:
    """The core dependencies and each extra's, with the project's own extras expanded."""
    optional = project.get("optional-dependencies", {})
    own = re.compile(rf"^{re.escape(project['name'])}\[([^\]]+)\]$")  # all = ["pyparrot[stt]"]
    pending, found, seen = [*project.get("dependencies", [])], [], set()
    for extra in extras:
        pending.append(f"{project['name']}[{extra}]")
    while pending:
        spec = pending.pop(0)
        match = own.match(spec.replace(" ", ""))
        if match is None:
            found += [] if spec in found else [spec]
            continue
        for extra in match.group(1).split(","):
            if extra not in seen:
                seen.add(extra)
                pending += optional[extra]
    return found


def main() -> None:
    here = Path(__file__).resolve().parent
    path = next(p for p in (here / "pyproject.toml", here.parent / "pyproject.toml") if p.exists())
    project = tomllib.loads(path.read_text())["project"]
    unknown = set(sys.argv[1:]) - set(project.get("optional-dependencies", {}))
    if unknown:
        sys.exit(f"no such extra: {', '.join(sorted(unknown))}")
    print("\n".join(requirements(project, sys.argv[1:])))


if __name__ == "__main__":
    main()
