"""Run benchmark modules and rewrite their sections of docs/benchmarks.md.

Each module `benchmarks/bench_<name>.py` defines `run() -> str`, returning a Markdown
section (heading, table of figures as ratios against the reference measured in the same
run, and the command that reproduces it). Sections are kept between markers so that
running one module rewrites only its own section:

    python -m benchmarks.run                 # every module
    python -m benchmarks.run geometry_rle    # only benchmarks/bench_geometry_rle.py
"""

from __future__ import annotations

import argparse
import importlib
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Figures written by `make bench` (`python -m benchmarks.run`). Every figure is a ratio
against a reference measured in the same run on the same machine; absolute times are
given for context only. Each section names the command that reproduces it.
"""


def available() -> list[str]:
    """Names of the benchmark modules, in file order."""
    return sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


def _marker(name: str, end: bool = False) -> str:
    return f"<!-- bench:{name}:{'end' if end else 'start'} -->"


def _sections(text: str) -> dict[str, str]:
    pattern = re.compile(r"<!-- bench:(\w+):start -->\n(.*?)<!-- bench:\1:end -->", re.DOTALL)
    return {m.group(1): m.group(2) for m in pattern.finditer(text)}


def write_report(results: dict[str, str]) -> None:
    """Merge freshly measured sections into docs/benchmarks.md, keeping the others."""
    existing = _sections(REPORT.read_text()) if REPORT.exists() else {}
    existing.update(results)
    machine = (
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    parts = [HEADER, f"Last run: {time.strftime('%Y-%m-%d')} on {machine}.\n"]
    for name in available():
        if name in existing:
            parts.append(f"{_marker(name)}\n{existing[name].rstrip()}\n{_marker(name, end=True)}\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark modules (all by default) and rewrite their sections."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"modules to run (default: all of {available()})")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results: dict[str, str] = {}
    for name in names:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        results[name] = module.run()
        print(results[name], flush=True)
    write_report(results)
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
