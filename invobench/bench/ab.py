"""A/B of two checkouts in one run: every variant of BASE measured beside NEW's, sample by sample.

Two separate runs cannot gate a change on a shared machine: the host's other tenants move whole
case groups by 10-80 % between runs (docs/gate.md), while variants measured in one worker, in
interleaved rounds, see the same host. `invobench ab SUITE --base REF` therefore loads the
invobench package of git revision REF beside this checkout's, in the same worker process, and
measures each case's BASE and NEW variants together; it then writes the two sides as two ordinary
results files, so `invobench compare BASE NEW` judges them as usual.

How BASE gets into the process: `prepare_base` extracts REF's `invobench/` (git archive) into a
scratch directory as the package `invobench_base`, renaming the word `invobench` in its sources
(imports, the custom-op namespace `invobench::`, paths); names like `invobench_involution_forward`
(the C kernel's symbols) are left alone, as each loaded library keeps its own symbols. The CPU
variant's library registers its op kernels into the namespace that cpu.py passes as a compiler flag,
so BASE builds a library of its own for `invobench_base::`. This
module, as an INVOBENCH_PLUGINS plugin, then registers every BASE variant under its name plus
`@base` ("involution.eager@base"), building BASE's workloads with BASE's code.
"""
from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

from invobench.bench.cases import BenchItem
from invobench.core import FAMILIES, Variant, Workload
from invobench.env import REPO_ROOT
from invobench.registry import register
from invobench.results import GitInfo, ResultsFile, append_line, case_id, lock_results, read_results

#: directory holding the package `invobench_base` (set by `invobench ab`, read by the plugin in every process)
BASE_ENV = "INVOBENCH_AB_BASE"
#: git revision of BASE, recorded in the results headers
BASE_REF_ENV = "INVOBENCH_AB_REF"
SUFFIX = "@base"
PACKAGE = "invobench_base"
PLUGIN = "invobench.bench.ab"
_WORD = re.compile(r"\binvobench\b")
# Python and data files only: a C++ or CUDA source keeps its text, so an unchanged kernel hashes to the
# build NEW already has (except the CPU variant's, whose namespace flag is part of its build's name).
_TEXT_SUFFIXES = {".py", ".json", ".yaml"}


class ABError(RuntimeError):
    """BASE cannot be prepared or loaded; the message says why."""


def plain_variant(name: str) -> str:
    """'eager@base' -> 'eager': the variant whose formulas and memory model a twin shares."""
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def prepare_base(ref: str, dest: Path, repo: Optional[Path] = None) -> str:
    """Extract REF's invobench package into dest/invobench_base, renamed; returns REF's full commit hash."""
    repo = repo or REPO_ROOT

    def git(*args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ABError(f"cannot run git in {repo}: {exc}") from exc

    rev = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if rev.returncode != 0:
        raise ABError(f"--base {ref!r} is not a commit of the repository at {repo} "
                      "(give a branch, tag or hash that `git rev-parse` knows; fetch it first in a shallow clone)")
    commit = rev.stdout.decode().strip()
    archive = git("archive", "--format=tar", commit, "invobench")
    if archive.returncode != 0:
        raise ABError(f"git archive of {commit[:12]} failed: {archive.stderr.decode().strip()}")
    target = dest / PACKAGE
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("invobench/"):
                continue
            path = target / member.name[len("invobench/"):]
            path.parent.mkdir(parents=True, exist_ok=True)
            data = tar.extractfile(member).read()
            if path.suffix in _TEXT_SUFFIXES:
                data = _WORD.sub(PACKAGE, data.decode()).encode()
            path.write_bytes(data)
    if not (target / "registry.py").exists():
        raise ABError(f"{commit[:12]} has no invobench/registry.py: too old for an A/B run")
    return commit


def _base_modules():
    base = os.environ.get(BASE_ENV)
    if not base:
        return None
    if base not in sys.path:
        sys.path.insert(0, base)
    try:
        import invobench_base.registry as base_registry  # noqa: WPS433 (the BASE checkout, renamed)
    except Exception as exc:  # any import error of the old code: say which revision failed
        raise ABError(f"cannot import BASE ({os.environ.get(BASE_REF_ENV, base)}): {type(exc).__name__}: {exc}") from exc
    return base_registry


def _twin(variant, base_registry):
    """NEW's registry entry for a BASE variant: BASE's code behind NEW's types."""
    base_fields = {f.name for f in dataclasses.fields(base_registry.Case)}

    def base_case(case):
        return base_registry.Case(**{k: v for k, v in case.as_dict().items() if k in base_fields})

    def build(case, backward):
        w = variant.build(base_case(case), backward)
        return Workload(fn=w.fn, inputs=w.inputs, module=getattr(w, "module", None), train_step=getattr(w, "train_step", None))

    return Variant(
        name=variant.name + SUFFIX, family=variant.family, levels=variant.levels, devices=variant.devices,
        dtypes=variant.dtypes, supports_backward=variant.supports_backward,
        description=f"{variant.description} [BASE {os.environ.get(BASE_REF_ENV, '')}]".strip(),
        build=build, requirements=variant.requirements,
        case_reasons=lambda case: variant.case_reasons(base_case(case)),
        backward_reasons=lambda case: variant.backward_reasons(base_case(case)),
        info=lambda case: variant.info(base_case(case)),
    )


def register_plugin() -> None:
    """Register every BASE variant as `<name>@base` (a no-op unless INVOBENCH_AB_BASE is set)."""
    base_registry = _base_modules()
    if base_registry is None:
        return
    for variant in base_registry.all_variants():
        if variant.family in FAMILIES:
            register(_twin(variant, base_registry))


def add_twins(items: list[BenchItem], known: set[str]) -> list[BenchItem]:
    """Each item followed by its BASE twin where BASE has that variant (so a case group holds both)."""
    out = []
    for item in items:
        out.append(item)
        name = item.variant + SUFFIX
        if f"{item.family}.{name}" in known:
            out.append(dataclasses.replace(item, variant=name,
                                           case_id=case_id(item.family, name, item.pass_, item.case.as_dict())))
    return out


def split(path: Path, base_out: Path, new_out: Path, base_commit: str) -> tuple[int, int]:
    """Write the BASE and NEW sides of an A/B results file as two results files; returns their record counts."""
    run: ResultsFile = read_results(path)
    sides = {"base": [], "new": []}
    for record in run.records:
        if record.variant.endswith(SUFFIX):
            name = plain_variant(record.variant)
            sides["base"].append(record.model_copy(update={
                "variant": name, "case_id": case_id(record.family, name, record.pass_, record.case)}))
        else:
            sides["new"].append(record)
    for side, out, commit in (("base", base_out, base_commit), ("new", new_out, None)):
        fingerprint = run.header.fingerprint
        if commit is not None:
            fingerprint = fingerprint.model_copy(update={"git": GitInfo(commit=commit, dirty=False)})
        header = run.header.model_copy(update={
            "run_id": f"{run.header.run_id}-{side}", "fingerprint": fingerprint,
            "options": {**run.header.options, "ab": {"side": side, "pair_run_id": run.header.run_id,
                                                      "base_commit": base_commit}}})
        out.parent.mkdir(parents=True, exist_ok=True)
        with lock_results(out):
            out.unlink(missing_ok=True)
            for line in [header, *run.rooflines, *sides[side]]:
                append_line(out, line)
    return len(sides["base"]), len(sides["new"])
