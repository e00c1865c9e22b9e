"""The wheels carried to the GPU machine (tools/gpu_wheels.txt) are exactly what the project's imports need
beyond the machine's image (tools/gpu_image_packages.txt), and the download is checked before it travels."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tools_loader import load_tool

ROOT = Path(__file__).resolve().parents[2]
gpu_wheels = load_tool("gpu_wheels")


def test_the_carried_list_is_what_the_imports_need_beyond_the_image():
    needed = gpu_wheels.missing_on_image()
    carried = gpu_wheels.read_wheel_list().names
    assert set(needed) == carried, (
        f"tools/gpu_wheels.txt lacks {sorted(set(needed) - carried)} "
        f"({'; '.join(f'{n}: {needed[n]}' for n in sorted(set(needed) - carried))}) "
        f"and carries {sorted(carried - set(needed))} that nothing needs")


def test_the_issue_facts_about_the_image_hold_in_its_list():
    image = gpu_wheels.read_image_packages()
    assert {"torch", "triton", "cupy-cuda13x", "nvidia-cuda-nvrtc", "numpy", "pandas", "scipy", "click", "pyyaml",
            "rich", "pytest", "pytest-xdist", "pillow", "tabulate"} <= image
    assert not {"fvcore", "iopath", "yacs", "termcolor", "plotly", "pydantic", "pydantic-core", "annotated-types",
                "typing-inspection", "jsonschema", "selenium"} & image


def test_every_exclusion_is_imported_and_says_why():
    wheels = gpu_wheels.read_wheel_list()
    imported = gpu_wheels.imported_modules([ROOT / r for r in gpu_wheels.SCANNED])
    from importlib import metadata

    providers = metadata.packages_distributions()
    imported_dists = {gpu_wheels.normalize(d) for m in imported for d in providers.get(m, [])}
    for name, reason in wheels.excluded.items():
        assert name in imported_dists, f"!{name} is excluded but nothing imports it: drop the line"
        assert len(reason.split()) >= 5, f"!{name}: say why it need not travel"


def test_the_image_stand_in_gets_the_image_side_of_the_imports():
    provided = gpu_wheels.provided_by_image()
    assert {"torch", "numpy", "pandas", "click", "rich", "pyyaml", "pytest", "cupy-cuda13x"} <= set(provided)
    assert not set(provided) & gpu_wheels.read_wheel_list().names
    assert "selenium" not in provided


def test_the_wheel_list_names_a_bad_line(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("pydantic==2.14.4\nplotly>=7\n")
    with pytest.raises(ValueError, match=r"list.txt:2: 'plotly>=7' is not `name==version`"):
        gpu_wheels.read_wheel_list(bad)
    bad.write_text("!selenium\n")
    with pytest.raises(ValueError, match="needs a reason"):
        gpu_wheels.read_wheel_list(bad)


def _wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = (), size: int = 0) -> Path:
    path = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        meta = [f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
        zf.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
        if size:
            zf.writestr("padding.bin", b"\0" * size, compress_type=zipfile.ZIP_STORED)
    return path


@pytest.fixture
def two_wheel_list(tmp_path, monkeypatch):
    listing = tmp_path / "gpu_wheels.txt"
    listing.write_text("pydantic==2.14.4\npydantic-core==2.50.5\n")
    monkeypatch.setattr(gpu_wheels, "WHEEL_LIST", listing)
    monkeypatch.setattr(gpu_wheels, "read_wheel_list", lambda path=listing: gpu_wheels.WheelList(
        carried=[gpu_wheels.Carried("pydantic", "2.14.4", False), gpu_wheels.Carried("pydantic-core", "2.50.5", False)]))
    d = tmp_path / "wheels"
    d.mkdir()
    return d


def test_a_consistent_download_passes(two_wheel_list):
    _wheel(two_wheel_list, "pydantic", "2.14.4", ("pydantic-core==2.50.5", "typing-extensions>=4.14.1"))
    _wheel(two_wheel_list, "pydantic-core", "2.50.5")
    assert gpu_wheels.check_wheels(two_wheel_list) == []


def test_a_pin_that_a_carried_wheel_refuses_is_named(two_wheel_list):
    _wheel(two_wheel_list, "pydantic", "2.14.4", ("pydantic-core==2.41.0",))
    _wheel(two_wheel_list, "pydantic-core", "2.50.5")
    (problem,) = gpu_wheels.check_wheels(two_wheel_list)
    assert "requires pydantic-core==2.41.0" in problem and "pins pydantic-core==2.50.5" in problem


def test_a_missing_a_stray_and_a_second_wheel_are_named(two_wheel_list):
    _wheel(two_wheel_list, "pydantic", "2.14.4")
    _wheel(two_wheel_list, "pydantic", "2.13.0")
    _wheel(two_wheel_list, "plotly", "7.1.0")
    problems = "\n".join(gpu_wheels.check_wheels(two_wheel_list))
    assert "pydantic-core==2.50.5: no wheel" in problems
    assert "pydantic: 2 wheels" in problems
    assert "plotly-7.1.0-py3-none-any.whl is not in" in problems


def test_wheels_above_what_travels_are_refused(two_wheel_list, monkeypatch):
    monkeypatch.setattr(gpu_wheels, "MAX_TOTAL_BYTES", 50_000)
    _wheel(two_wheel_list, "pydantic", "2.14.4", size=40_000)
    _wheel(two_wheel_list, "pydantic-core", "2.50.5", size=40_000)
    (problem,) = gpu_wheels.check_wheels(two_wheel_list)
    assert "that may travel with the working tree" in problem


def test_verify_names_a_requirement_the_interpreter_cannot_meet(monkeypatch):
    from importlib import metadata

    monkeypatch.setattr(gpu_wheels, "read_wheel_list", lambda path=None: gpu_wheels.WheelList(
        carried=[gpu_wheels.Carried("pydantic", metadata.version("pydantic"), False)]))
    assert gpu_wheels.verify() == []
    real_requires = metadata.requires
    monkeypatch.setattr(metadata, "requires", lambda name: real_requires(name) + ["no-such-distribution>=1"])
    (problem,) = gpu_wheels.verify()
    assert "no-such-distribution" in problem and "neither on the image nor carried" in problem
