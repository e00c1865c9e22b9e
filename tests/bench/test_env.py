"""The CPU part of the environment fingerprint: enough to tell two machines with one model name apart."""
from __future__ import annotations

from invobench.env import cpu_details, fingerprint
from invobench.report.inputs import machine_name
from invobench.results import ResultsFile, RunHeader, SuiteRef

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512dq avx512vl avx512_bf16

processor\t: 1
flags\t\t: fpu
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm sve
CPU part\t: 0xd40
"""


def _caches(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n"), (d / "type").write_text(f"{kind}\n"), (d / "size").write_text(f"{size}\n")
    return root


def test_cpu_details_reads_family_model_simd_flags_and_caches(tmp_path):
    (tmp_path / "cpuinfo").write_text(ZEN4)
    caches = _caches(tmp_path / "cache", [(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "1024K"),
                                          (3, "Unified", "32768K")])
    got = cpu_details(tmp_path / "cpuinfo", caches)
    assert got == {"family": "25", "model_id": "17", "stepping": "1",
                   "simd": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512vl", "avx512_bf16"],
                   "caches": {"L1d": "32K", "L1i": "32K", "L2": "1024K", "L3": "32768K"}}


def test_cpu_details_on_arm_and_without_proc(tmp_path):
    (tmp_path / "cpuinfo").write_text(ARM)
    assert cpu_details(tmp_path / "cpuinfo", tmp_path / "none") == {"part": "0xd40", "simd": ["asimd", "sve"]}
    assert cpu_details(tmp_path / "missing", tmp_path / "none") == {}


def test_fingerprint_carries_the_cpu_details():
    cpu = fingerprint()["cpu"]
    assert {"model", "logical_cores"} <= set(cpu) and isinstance(cpu.get("simd", []), list)


def _run(cpu: dict) -> ResultsFile:
    header = RunHeader(run_id="r", suite=SuiteRef(name="s", path="s.yaml", sha256="0" * 64, config={}),
                       fingerprint={"cpu": cpu, "hostname": "vm", "cuda": {"devices": []}})
    return ResultsFile(path="x.jsonl", header=header, rooflines=[], records=[])


def test_machine_name_tells_avx2_and_avx512_machines_of_one_model_apart():
    zen3 = _run({"model": "AMD EPYC", "simd": ["avx", "avx2", "fma"]})
    zen4 = _run({"model": "AMD EPYC", "simd": ["avx", "avx2", "fma", "avx512f"]})
    assert machine_name(zen3) == "AMD EPYC avx2 (vm)" and machine_name(zen4) == "AMD EPYC avx512 (vm)"
    assert machine_name(_run({"model": "AMD EPYC"})) == "AMD EPYC (vm)"  # results written before the field existed


def test_fingerprint_records_the_allocator_settings(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    env = fingerprint()["env"]
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.mmap_max=0" and "LD_PRELOAD" not in env
