"""The wheels the GPU machine's image lacks: their list, its check against the project's imports, the download
and the check of an install.

    python tools/gpu_wheels.py download DIR [--python-version 3.12]   # make gpu-wheels
    python tools/gpu_wheels.py verify                # on the GPU machine, carried wheels on PYTHONPATH
    python tools/gpu_wheels.py provided              # image distributions the project needs (make compat)
    python tools/gpu_wheels.py missing               # what the imports need beyond the image (the test's view)

The list is tools/gpu_wheels.txt; the image's distributions are tools/gpu_image_packages.txt. `missing`
reads the imports of invobench/, tests/ and tools/ (every `import`, also those inside functions), maps
each to the distribution installed here that provides it, and follows the requirements of those the
image lacks, evaluated for the GPU machine (CPython 3.12, Linux x86_64). It needs an environment where
the project and its extras are installed (`make install`).
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

ROOT = Path(__file__).resolve().parent.parent
WHEEL_LIST = ROOT / "tools" / "gpu_wheels.txt"
IMAGE_LIST = ROOT / "tools" / "gpu_image_packages.txt"
SCANNED = ("invobench", "tests", "tools")
#: the GPU machine's interpreter and platform, for requirement markers and `pip download`
TARGET_PYTHON = "3.12"
TARGET_MARKERS = {"python_version": TARGET_PYTHON, "python_full_version": "3.12.3", "sys_platform": "linux",
                  "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython"}
#: manylinux tags pip must be given one by one (it matches N exactly); the device notes' recipe
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
#: what the machine can take back in: the wheels travel with the working tree
MAX_TOTAL_BYTES = 40 * 2**20


def normalize(name: str) -> str:
    """PEP 503 name: 'PyYAML' -> 'pyyaml', 'typing_extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Carried:
    name: str
    version: str
    build: bool  # only an sdist exists: built into a pure-Python wheel here


@dataclass
class WheelList:
    carried: list[Carried] = field(default_factory=list)
    #: imported but not carried: name -> reason
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {c.name for c in self.carried}


def read_wheel_list(path: Path = WHEEL_LIST) -> WheelList:
    """Parse tools/gpu_wheels.txt; ValueError naming the line for anything else."""
    out = WheelList()
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("!"):
            name, _, reason = line[1:].partition(" ")
            if not reason.strip():
                raise ValueError(f"{path.name}:{number}: `!{name}` needs a reason after the name")
            out.excluded[normalize(name)] = reason.strip()
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(\s+build)?", line)
        if not m:
            raise ValueError(f"{path.name}:{number}: {raw.strip()!r} is not `name==version` (optionally followed by "
                             "`build`) or `!name reason`")
        out.carried.append(Carried(normalize(m.group(1)), m.group(2), bool(m.group(3))))
    return out


def read_image_packages(path: Path = IMAGE_LIST) -> set[str]:
    return {normalize(line.split("#", 1)[0].strip()) for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()}


# ---------------------------------------------------------------------------------------------
# What the project imports, and what that needs beyond the image
# ---------------------------------------------------------------------------------------------

def imported_modules(roots: Iterable[Path]) -> dict[str, list[str]]:
    """Top-level names of every absolute import in the .py files under `roots` -> the files importing them."""
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def first_party(roots: Iterable[Path]) -> set[str]:
    """Names the scanned trees define themselves: packages, modules, and the harness modules tests import."""
    names = {"invobench", "tests", "conftest", "invobench_base"}
    for root in roots:
        for path in root.rglob("*.py"):
            names.add(path.stem)
        for path in root.rglob("*"):
            if path.is_dir():
                names.add(path.name)
    return names


def _requirements(dist_name: str) -> list[str]:
    """The requirements of an installed distribution that apply on the GPU machine (no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    out = []
    for text in metadata.requires(dist_name) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({**TARGET_MARKERS, "extra": ""}):
            continue
        out.append(normalize(req.name))
    return out


def missing_on_image(image: Optional[set[str]] = None, excluded: Optional[set[str]] = None) -> dict[str, str]:
    """Distributions the project needs that the image lacks -> why (the import, or the distribution needing it).

    Raises LookupError naming a module that no installed distribution provides.
    """
    from importlib import metadata

    image = read_image_packages() if image is None else image
    excluded = set(read_wheel_list().excluded) if excluded is None else excluded
    roots = [ROOT / r for r in SCANNED]
    providers = metadata.packages_distributions()
    ours = first_party(roots)
    why: dict[str, str] = {}
    todo: list[str] = []
    for module, files in sorted(imported_modules(roots).items()):
        if module in sys.stdlib_module_names or module in ours or module == "__future__":
            continue
        dists = providers.get(module)
        if not dists:
            raise LookupError(f"`import {module}` ({files[0]}) is provided by no distribution installed in "
                              f"{sys.prefix}: install the project with its extras (make install), then rerun")
        for dist in dict.fromkeys(normalize(d) for d in dists):
            if dist in image or dist in excluded or dist in why:
                continue
            why[dist] = f"import {module} ({files[0]})"
            todo.append(dist)
    while todo:
        dist = todo.pop()
        for need in _requirements(dist):
            if need in image or need in excluded or need in why:
                continue
            why[need] = f"required by {dist}"
            todo.append(need)
    return why


def provided_by_image(image: Optional[set[str]] = None) -> list[str]:
    """Image distributions the project's imports reach (directly or through carried ones): what a stand-in of
    the image must hold (make compat)."""
    from importlib import metadata

    image = read_image_packages() if image is None else image
    carried = read_wheel_list()
    roots = [ROOT / r for r in SCANNED]
    providers = metadata.packages_distributions()
    ours = first_party(roots)
    seen: set[str] = set()
    todo = []
    for module in imported_modules(roots):
        if module in sys.stdlib_module_names or module in ours or module == "__future__":
            continue
        for dist in providers.get(module, []):
            if normalize(dist) not in carried.excluded:
                todo.append(normalize(dist))
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            todo.extend(_requirements(dist))
        except metadata.PackageNotFoundError:
            pass
    return sorted(d for d in seen if d in image)


# ---------------------------------------------------------------------------------------------
# Download (here) and verify (there)
# ---------------------------------------------------------------------------------------------

def wheel_requirements(path: Path) -> list[str]:
    """Requires-Dist lines of a wheel file's METADATA."""
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def wheel_name(path: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return normalize(name), version


def check_wheels(directory: Path, python_version: str = TARGET_PYTHON) -> list[str]:
    """Problems of a downloaded set: a listed wheel missing or twice, a stray one, a pin that another carried
    wheel's requirement refuses, the total above MAX_TOTAL_BYTES."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    wanted = {c.name: c.version for c in read_wheel_list().carried}
    wheels = sorted(directory.glob("*.whl"))
    have: dict[str, list[Path]] = {}
    for w in wheels:
        have.setdefault(wheel_name(w)[0], []).append(w)
    problems = [f"{name}=={v}: no wheel in {directory}" for name, v in wanted.items() if name not in have]
    problems += [f"{name}: {len(ws)} wheels ({', '.join(w.name for w in ws)}); keep one" for name, ws in have.items()
                 if len(ws) > 1]
    problems += [f"{ws[0].name} is not in {WHEEL_LIST.name}; delete it" for name, ws in have.items() if name not in wanted]
    markers = {**TARGET_MARKERS, "python_version": python_version, "extra": ""}
    for name, ws in have.items():
        if name not in wanted:
            continue
        if wheel_name(ws[0])[1] != wanted[name]:
            problems.append(f"{ws[0].name}: {WHEEL_LIST.name} pins {name}=={wanted[name]}")
        for text in wheel_requirements(ws[0]):
            req = Requirement(text)
            other = normalize(req.name)
            if other in wanted and (req.marker is None or req.marker.evaluate(markers)) and \
                    not req.specifier.contains(Version(wanted[other]), prereleases=True):
                problems.append(f"{ws[0].name} requires {text}, but {WHEEL_LIST.name} pins {other}=={wanted[other]}")
    total = sum(w.stat().st_size for w in wheels)
    if total > MAX_TOTAL_BYTES:
        problems.append(f"the wheels take {total / 2**20:.1f} MiB, above the {MAX_TOTAL_BYTES / 2**20:.0f} MiB "
                        "that may travel with the working tree")
    return problems


def download(directory: Path, python_version: str = TARGET_PYTHON, pip: Optional[list[str]] = None) -> int:
    """Fetch every listed wheel into `directory` (cp<version> manylinux x86_64, --no-deps); build the sdist-only
    ones into pure-Python wheels. Returns the number of problems (printed)."""
    pip = pip or [sys.executable, "-m", "pip"]
    directory.mkdir(parents=True, exist_ok=True)
    wanted = read_wheel_list().carried
    present = {wheel_name(w): w for w in directory.glob("*.whl")}
    binary = [c for c in wanted if not c.build and (c.name, c.version) not in present]
    built = [c for c in wanted if c.build and (c.name, c.version) not in present]
    if binary:
        cmd = [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", python_version,
               "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(directory),
               *[f"{c.name}=={c.version}" for c in binary]]
        print("+", " ".join(cmd[:4]), "...", " ".join(f"{c.name}=={c.version}" for c in binary), flush=True)
        subprocess.run(cmd, check=True)
    for c in built:  # one at a time: a pure-Python wheel from the sdist, checked to be one
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", tmp, f"{c.name}=={c.version}"], check=True)
            (made,) = Path(tmp).glob("*.whl")
            if not made.name.endswith("-py3-none-any.whl") and not made.name.endswith("-py2.py3-none-any.whl"):
                print(f"{made.name}: built from an sdist but not pure Python; it cannot be carried", file=sys.stderr)
                return 1
            shutil.move(str(made), directory / made.name)
    problems = check_wheels(directory, python_version)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    total = sum(w.stat().st_size for w in directory.glob("*.whl"))
    print(f"{len(wanted)} wheels in {directory}, {total / 2**20:.1f} MiB")
    return len(problems)


def verify(names: Optional[Iterable[str]] = None) -> list[str]:
    """In the running interpreter: each carried distribution is importable at its pinned version and every
    requirement it has is met by what this interpreter sees (image + carried)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.version import Version

    carried = {c.name: c.version for c in read_wheel_list().carried}
    problems = []
    for name in names or carried:
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: not installed (carry .gpu-wheels/ and install it first)")
            continue
        if name in carried and have != carried[name]:
            problems.append(f"{name}: {have} is installed, {WHEEL_LIST.name} pins {carried[name]}")
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                other = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{name} requires {text}: {req.name} is neither on the image nor carried")
                continue
            if not req.specifier.contains(Version(other), prereleases=True):
                problems.append(f"{name} requires {text}, this interpreter has {req.name} {other}")
    return problems


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/gpu_wheels.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch the listed wheels into DIR")
    d.add_argument("directory", type=Path)
    d.add_argument("--python-version", default=TARGET_PYTHON)
    sub.add_parser("verify", help="check the carried distributions as this interpreter sees them")
    sub.add_parser("provided", help="image distributions the project needs, one a line")
    sub.add_parser("missing", help="what the imports need beyond the image, with why")
    args = parser.parse_args(argv)
    if args.command == "download":
        return 1 if download(args.directory, args.python_version) else 0
    if args.command == "verify":
        problems = verify()
        for p in problems:
            print(f"problem: {p}")
        print(f"carried distributions: {len(read_wheel_list().carried)} checked, {len(problems)} problem(s)")
        return 1 if problems else 0
    if args.command == "provided":
        print("\n".join(provided_by_image()))
        return 0
    for name, why in sorted(missing_on_image().items()):
        print(f"{name}\t{why}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
