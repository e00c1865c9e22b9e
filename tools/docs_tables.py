"""Rewrite the generated blocks of README.md, docs/*.md and results/README.md from the committed reference runs.

    python tools/docs_tables.py            # rewrite every block (make docs)
    python tools/docs_tables.py --check    # exit 1 naming each stale block (the test tier runs this)

A block is two HTML comments with the generated Markdown between them:

    <!-- generated: KIND ARG... -->
    ...
    <!-- end generated -->

Kinds: `cpu-table RESULTS`, `models-table RESULTS`, `run-facts RESULTS`, `reference-table RESULTS...` and
`bottom-line RESULTS...` (`invobench show --view cpu|models|reference|verdict`), and `results-index DIR` (one row per reference run
under DIR, from the results files' headers). Every block ends by naming the files it came from, so
each figure in README and docs traces to a committed run. Paths are relative to the repository root.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from invobench.report import views
from invobench.results import read_results

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL)


def _sources(paths: list[str]) -> str:
    return "Source: " + ", ".join(f"`{p}`" for p in paths) + " (regenerate with `make docs`)."


def _one(args: list[str], kind: str) -> Path:
    if len(args) != 1:
        raise ValueError(f"{kind} takes one results file, got {args}")
    return ROOT / args[0]


def cpu_table(args: list[str]) -> str:
    return views.to_markdown(views.cpu_view(read_results(_one(args, "cpu-table")))) + "\n\n" + _sources(args)


def models_table(args: list[str]) -> str:
    return views.to_markdown(views.models_view(read_results(_one(args, "models-table")))) + "\n\n" + _sources(args)


def run_facts(args: list[str]) -> str:
    return views.run_facts(read_results(_one(args, "run-facts"))) + ". " + _sources(args)


def reference_table(args: list[str]) -> str:
    """Per run: a line naming the machine and the case, then every variant's median against the depthwise conv."""
    parts = []
    for arg in args:
        df = views.reference_view([read_results(ROOT / arg)])
        if df.empty:
            parts.append(f"`{arg}`: no ok records")
            continue
        parts.append(f"{df['machine'].iloc[0]}, {df['case'].iloc[0]}:\n\n"
                     + views.to_markdown(df.drop(columns=["machine", "case"])))
    return "\n\n".join(parts) + "\n\n" + _sources(args)


def bottom_line(args: list[str]) -> str:
    """The verdict's sentence of each run (`invobench show --view verdict`), and the variant it recommends."""
    from invobench.report.verdict import bottom_line as sentence, build_verdicts

    lines = []
    for arg in args:
        for verdict in build_verdicts([read_results(ROOT / arg)]):
            lines.append(f"- {sentence(verdict)}")
            lines += [f"  {rec.sentence()}" for rec in verdict.recommendations]
    return "\n".join(lines) + "\n\n" + _sources(args)


def results_index(args: list[str]) -> str:
    directory = ROOT / (args[0] if args else "results")
    rows = []
    for path in sorted(p for p in directory.glob("*/*.jsonl") if p.parent.name != "local"):  # local/: git-ignored
        run = read_results(path)
        fp = run.header.fingerprint
        argv = run.header.options.get("argv") or []
        rows.append({
            "machine": path.parent.name, "suite": run.header.suite.name, "file": f"`{path.relative_to(ROOT)}`",
            "records": len(run.records), "date": str(fp.time_utc or "?")[:10],
            "commit": str(fp.git.commit or "?")[:7] + (" (dirty)" if fp.git.dirty else ""),
            "machine details": views.run_facts(run).split(";")[0],
            "command": "`invobench " + " ".join(argv) + "`" if argv else "–",
        })
    import pandas as pd

    return views.to_markdown(pd.DataFrame(rows))


KINDS: dict[str, Callable[[list[str]], str]] = {
    "cpu-table": cpu_table, "models-table": models_table, "run-facts": run_facts,
    "reference-table": reference_table, "results-index": results_index, "bottom-line": bottom_line,
}


def render(spec: str) -> str:
    kind, *args = spec.split()
    if kind not in KINDS:
        raise ValueError(f"unknown generated block kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](args).rstrip() + "\n"


def rewrite(text: str) -> str:
    """`text` with every generated block's body replaced by what its spec renders now."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("spec")) + m.group(4), text)


def documents() -> list[Path]:
    docs = [p for p in sorted((ROOT / "docs").rglob("*.md")) if "lab" not in p.relative_to(ROOT / "docs").parts]
    return [ROOT / "README.md", *docs, ROOT / "results" / "README.md"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks; exit 1 if there are any")
    args = parser.parse_args(argv)
    stale = []
    for path in documents():
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            new = rewrite(text)
        except (ValueError, OSError) as exc:
            print(f"{path.relative_to(ROOT)}: {exc}", file=sys.stderr)
            return 2
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale generated blocks in: " + ", ".join(map(str, stale)) + " (run `make docs`)", file=sys.stderr)
        return 1
    if not args.check:
        print(f"rewrote {len(stale)} file(s)" + (": " + ", ".join(map(str, stale)) if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
