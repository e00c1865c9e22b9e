"""Shards as jobs (`invobench run --executor local|slurm --shards N`): the real submitit local executor on
this machine, SLURM through fake sbatch/srun/sacct on PATH, the merge's provenance and the report's warning."""
from __future__ import annotations

import json
import os
import random
import stat
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("submitit", reason="submitit is the optional extra `slurm` (pip install 'invobench[slurm]')")

from invobench import registry  # noqa: E402
from invobench.bench.cluster import (  # noqa: E402
    ClusterConfig, JobSubmitted, ShardsPlanned, jobs_file, parse_slurm_options, read_jobs, run_cluster, shard_file,
    shards_folder,
)
from invobench.bench.merge import merge_shards  # noqa: E402
from invobench.bench.runner import RunConfig, RunnerError, run_suite  # noqa: E402
from invobench.cli import cli  # noqa: E402
from invobench.report.compare import compare_runs  # noqa: E402
from invobench.report.page import build_report  # noqa: E402
from invobench.report.shards import shard_warning  # noqa: E402
from invobench.results import read_results  # noqa: E402

#: 4 case groups (2 sizes × 2 passes), so 3 shards are uneven; `involution.test-kill-job` comes from PLUGIN
SUITE = """
name: tiny
variants: [involution.eager, involution.test-kill-job]
budget: {warmup_s: 0.0, case_s: 0.02, min_samples: 3, max_samples: 5, timeout_s: 60}
roofline: {copy_mib: 2, matmul_max_n: 64, time_s: 0.01}
defaults: {B: 1, C: 8, size: 6, K: 3, G: 2, device: cpu, dtype: float32}
sweeps:
  - product: {pass: [fwd, fwd+bwd], size: [6, 8]}
"""

#: a variant whose first call, while MARKER exists, deletes it and SIGKILLs the worker's parent: the shard's
#: runner, i.e. the job itself (a crash that no record can absorb). One shot: exactly one job dies, once.
PLUGIN = '''
import os, signal
from pathlib import Path

import torch

from invobench.core import Variant, Workload

MARKER = Path({marker!r})


def _build(case, requires_grad):
    x = torch.ones(4, requires_grad=requires_grad)

    def fn():
        try:
            MARKER.unlink()
        except FileNotFoundError:
            return x * 2
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(1)

    return Workload(fn, [x])


def register_plugin():
    from invobench.registry import register

    register(Variant("test-kill-job", "involution", ("op",), ("cpu",), ("float32",), True,
                     "test: kills the job of its shard once", _build))
'''

FAST = {"poll_s": 0.2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The suite, the plugin (loaded through INVOBENCH_PLUGINS by this process, the jobs and their workers) and
    a one-process run of the suite: what every split must reproduce."""
    tmp = tmp_path_factory.mktemp("cluster")
    (tmp / "tiny.yaml").write_text(textwrap.dedent(SUITE))
    marker = tmp / "kill-marker"
    (tmp / "kill_plugin.py").write_text(PLUGIN.format(marker=str(marker)))
    before = {v.key for v in registry.all_variants()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INVOBENCH_PLUGINS", str(tmp / "kill_plugin.py"))
        one = tmp / "one-process.jsonl"
        run_suite(RunConfig(suite=str(tmp / "tiny.yaml"), out=one))
        yield {"dir": tmp, "suite": str(tmp / "tiny.yaml"), "marker": marker, "one": read_results(one)}
    for variant in registry.all_variants():
        if variant.key not in before:
            registry.unregister(variant.key)


@pytest.fixture
def plugin_env(setup, monkeypatch):
    monkeypatch.setenv("INVOBENCH_PLUGINS", str(setup["dir"] / "kill_plugin.py"))
    return setup


def case_ids(path: Path) -> list[str]:
    return [r.case_id for r in read_results(path).records]


def test_the_one_process_run_measures_every_case_of_the_suite(setup):
    one = setup["one"]
    assert len(one.records) == 8 and {r.status for r in one.records} == {"ok"}


def test_two_local_shards_merge_into_the_case_set_of_one_process_with_each_records_job(plugin_env, tmp_path):
    out = tmp_path / "run.jsonl"
    events = []
    summary = run_cluster(RunConfig(suite=plugin_env["suite"], out=out), ClusterConfig("local", 2, **FAST),
                          on_event=events.append)
    assert [(s.shard, s.state, s.records, s.planned) for s in summary.shards] == [("1/2", "done", 4, 4), ("2/2", "done", 4, 4)]
    ids = case_ids(out)
    assert len(ids) == len(set(ids)) and set(ids) == {r.case_id for r in plugin_env["one"].records}
    assert summary.merged and summary.merged_records == 8 and summary.warnings == []
    # CPU cases: the shards ran one after another, and the run said why
    planned = next(e for e in events if isinstance(e, ShardsPlanned))
    assert "one after another" in planned.note and "share" in planned.note
    submitted = [e for e in events if isinstance(e, JobSubmitted)]
    assert [e.shard for e in submitted] == ["1/2", "2/2"]
    # the layout: shard files, their jobs, the manifest, submitit's logs beside --out
    folder = shards_folder(out)
    assert folder == tmp_path / "run.jsonl.shards" and (folder / "run.json").exists()
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["run"]["shards"] == 2 and [j[0]["job_id"] for j in manifest["jobs"].values()] == [e.job_id for e in submitted]
    # per record: the shard, the host and the job that measured it
    merged = read_results(out)
    for record in merged.records:
        where = record.info["shard"]
        k = int(where["shard"].split("/")[0])
        assert where["job_id"] == submitted[k - 1].job_id and where["host"] and where["merged_from"] == k - 1
    assert [m["shard"] for m in merged.header.options["merged_from"]] == ["1/2", "2/2"]
    assert all(len(m["jobs"]) == 1 and m["jobs"][0]["fingerprint"]["hostname"] for m in merged.header.options["merged_from"])
    assert shard_warning(merged) is None  # one machine


def test_a_crashed_job_is_named_with_its_log_and_resume_reruns_only_its_shard(plugin_env, tmp_path):
    out = tmp_path / "run.jsonl"
    plugin_env["marker"].touch()  # the first shard to call test-kill-job loses its job
    # --parallel: the three shards at once (quicker here; their timings share the cores, and the run says so)
    args = ["run", plugin_env["suite"], "--executor", "local", "--shards", "3", "--parallel", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert not plugin_env["marker"].exists() and "disturb each other" in " ".join(result.output.split())
    failed = [line.split()[1] for line in result.output.splitlines() if line.startswith("shard ") and " failed: " in line]
    assert len(failed) == 1, result.output
    k = int(failed[0].split("/")[0])
    folder = shards_folder(out)
    failed_log = next(p for p in (folder / "logs").glob("*_0_log.out") if f"shard {k}/3 on" in p.read_text())
    assert f"shard {k}/3 failed: " in result.output and "records missing" in result.output
    assert str(failed_log) in result.output and "--resume" in result.output and "Traceback" not in result.output
    # the finished shards are merged already; the failed one is named as missing
    assert f"shards {k}/3 are missing" in result.output
    partial = set(case_ids(out))
    assert partial and partial < {r.case_id for r in plugin_env["one"].records}

    events = []
    summary = run_cluster(RunConfig(suite=plugin_env["suite"], out=out, resume=True),
                          ClusterConfig("local", 3, parallel=True, **FAST), on_event=events.append)
    planned = next(e for e in events if isinstance(e, ShardsPlanned))
    assert planned.to_run == (k,) and planned.complete == tuple(j for j in (1, 2, 3) if j != k)
    assert [e.shard for e in events if isinstance(e, JobSubmitted)] == [f"{k}/3"]
    assert [s.state for s in summary.shards] == ["done", "done", "done"] and not summary.warnings
    ids = case_ids(out)
    assert len(ids) == len(set(ids)) == 8 and set(ids) == {r.case_id for r in plugin_env["one"].records}
    # shard k was written by two jobs; each of its records names the one that measured it
    jobs = read_jobs(shard_file(folder, k, 3))
    assert len(jobs) == 2 and jobs[1]["first_record"] >= jobs[0]["first_record"]
    mine = [r.info["shard"] for r in read_results(out).records if r.info["shard"]["shard"] == f"{k}/3"]
    assert {w["job_id"] for w in mine} <= {j["job_id"] for j in jobs} and jobs[1]["job_id"] in {w["job_id"] for w in mine}


def write_shard(setup, path: Path, shard: str, suite: str = "tiny", keep=None, **options) -> None:
    """The one-process run's file as if `run --shard` had written it (header edited; only the records of
    case ids in `keep`, when given)."""
    lines = Path(setup["one"].path).read_text().splitlines()
    if keep is not None:
        lines = [line for line in lines if json.loads(line)["type"] != "record" or json.loads(line)["case_id"] in keep]
    header = json.loads(lines[0])
    header["options"].update(shard=shard, **options)
    header["suite"]["name"] = suite
    path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")


def test_resume_refuses_shard_files_of_another_split_or_suite_before_submitting(plugin_env, tmp_path, monkeypatch):
    from invobench.bench import cluster

    monkeypatch.setattr(cluster.ClusterRun, "_submit", lambda *a, **k: pytest.fail("nothing may be submitted"))
    suite, out = plugin_env["suite"], tmp_path / "run.jsonl"
    folder = shards_folder(out)
    folder.mkdir()
    eager = ["involution.eager"]
    write_shard(plugin_env, shard_file(folder, 1, 2), "1/2", variants=eager)
    with pytest.raises(RunnerError, match=r"holds the shards of an earlier run: pass --resume"):
        run_cluster(RunConfig(suite=suite, out=out, variants=eager), ClusterConfig("local", 3))
    with pytest.raises(RunnerError, match=r"shard-1-of-2.jsonl belongs to a split into 2 shards, this run asks for "
                                          r"--shards 3; continue it with --shards 2"):
        run_cluster(RunConfig(suite=suite, out=out, resume=True, variants=eager), ClusterConfig("local", 3))
    with pytest.raises(RunnerError, match=r"was run with variants=\['involution.eager'\], this run has variants=None"):
        run_cluster(RunConfig(suite=suite, out=out, resume=True), ClusterConfig("local", 2))
    # shard 1's file under the name of shard 2, then a file of another suite
    write_shard(plugin_env, shard_file(folder, 2, 2), "1/2", variants=eager)
    with pytest.raises(RunnerError, match=r"shard-2-of-2.jsonl was run with shard='1/2', this run has shard='2/2'"):
        run_cluster(RunConfig(suite=suite, out=out, resume=True, variants=eager), ClusterConfig("local", 2))
    write_shard(plugin_env, shard_file(folder, 2, 2), "2/2", suite="other", variants=eager)
    with pytest.raises(RunnerError, match=r"shard-2-of-2.jsonl belongs to a run of suite 'other', not of 'tiny'"):
        run_cluster(RunConfig(suite=suite, out=out, resume=True, variants=eager), ClusterConfig("local", 2))


FAKE_SBATCH = r"""#!/bin/bash
# records the script, runs it in the background as job $id, prints what sbatch prints
script="${@: -1}"
n=$(ls "$FAKE_SLURM"/job-*.sh 2>/dev/null | wc -l)
id=$((FAKE_SLURM_BASE + n))
cp "$script" "$FAKE_SLURM/job-$id.sh"
printf '%s\n' "$@" > "$FAKE_SLURM/job-$id.args"
run() { SLURM_JOB_ID=$id bash "$FAKE_SLURM/job-$id.sh"; echo $? > "$FAKE_SLURM/job-$id.rc"; }
if [ -n "$FAKE_SLURM_SYNC" ]; then run </dev/null >/dev/null 2>&1; else run </dev/null >/dev/null 2>&1 & fi
echo "Submitted batch job $id"
"""

FAKE_SRUN = r"""#!/bin/bash
while [ $# -gt 0 ]; do
  case "$1" in
    --output) out="$2"; shift 2;;
    --error) err="$2"; shift 2;;
    --*) shift;;
    *) break;;
  esac
done
sub() { local s="${1//%j/$SLURM_JOB_ID}"; echo "${s//%t/0}"; }
export SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_NTASKS=1 SLURM_JOB_NUM_NODES=1
exec "$@" >>"$(sub "$out")" 2>>"$(sub "$err")"
"""

FAKE_SACCT = r"""#!/bin/bash
echo "JobID|State|NodeList"
prev=""
for a in "$@"; do
  if [ "$prev" = "-j" ]; then
    if [ -f "$FAKE_SLURM/job-$a.rc" ]; then
      if [ "$(cat "$FAKE_SLURM/job-$a.rc")" = 0 ]; then st=COMPLETED; else st=FAILED; fi
    else st=RUNNING; fi
    echo "$a|$st|fakenode1"
  fi
  prev="$a"
done
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, srun and sacct on PATH: jobs run here, in the background, as SLURM would run their scripts."""
    import submitit

    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("sacct", FAKE_SACCT), ("scancel", "#!/bin/bash\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(state))
    monkeypatch.setenv("FAKE_SLURM_BASE", str(random.randint(10_000, 90_000)))
    submitit.SlurmJob.watcher.clear()  # submitit's watcher is shared by every job of the process
    yield state
    submitit.SlurmJob.watcher.clear()


def test_slurm_submits_one_job_per_shard_with_the_options_and_merges_what_they_wrote(plugin_env, fake_slurm, tmp_path):
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(cli, [
        "run", plugin_env["suite"], "--executor", "slurm", "--shards", "2", "--partition", "gpu-test",
        "--gpus-per-job", "1", "--time-min", "30", "--slurm", "account=proj", "--slurm", "constraint=h100",
        "--slurm", "exclusive", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scripts = sorted(fake_slurm.glob("job-*.sh"))
    assert len(scripts) == 2  # one sbatch per shard
    for k, script in enumerate(scripts, start=1):
        text = script.read_text()
        for line in ("#SBATCH --partition=gpu-test", "#SBATCH --gpus-per-node=1", "#SBATCH --time=30",
                     "#SBATCH --account=proj", "#SBATCH --constraint=h100", "#SBATCH --exclusive",
                     f"#SBATCH --job-name=invobench-tiny-{k}of2"):
            assert line in text.splitlines(), (line, text)
        assert f"-m submitit.core._submit {shards_folder(out) / 'logs'}" in text  # the job runs in the shared folder
    assert "CPU cases" in result.output  # the note: CPU timings on shared nodes
    ids = case_ids(out)
    assert len(ids) == len(set(ids)) and set(ids) == {r.case_id for r in plugin_env["one"].records}
    job_ids = {s.stem.split("-")[1] for s in scripts}
    assert {r.info["shard"]["job_id"] for r in read_results(out).records} == job_ids
    # resuming a finished run submits nothing and merges again
    again = CliRunner().invoke(cli, ["run", plugin_env["suite"], "--executor", "slurm", "--shards", "2",
                                     "--partition", "gpu-test", "--resume", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert len(list(fake_slurm.glob("job-*.sh"))) == 2 and "2 complete already" in again.output
    assert sorted(case_ids(out)) == sorted(ids)


def test_a_failed_slurm_job_is_reported_with_its_log_paths(plugin_env, fake_slurm, tmp_path, monkeypatch):
    (fake_slurm.parent / "bin" / "srun").write_text("#!/bin/bash\nexit 3\n")  # the job dies before python starts
    monkeypatch.setenv("FAKE_SLURM_SYNC", "1")  # and has ended when sbatch returns
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(cli, ["run", plugin_env["suite"], "--executor", "slurm", "--shards", "2",
                                      "--variants", "involution.eager", "--out", str(out)])
    assert result.exit_code == 1, result.output
    for k in (1, 2):
        assert f"shard {k}/2 failed: 2 of 2 records missing" in result.output
    assert "the job ended (FAILED)" in result.output and "_0_log.out" in result.output and "_0_log.err" in result.output
    assert not out.exists()  # nothing finished, nothing merged
    assert "--gpus-per-node" not in next(fake_slurm.glob("job-*.sh")).read_text()  # CPU suite: no GPU asked for


def test_merge_names_the_job_of_each_record_when_a_shard_was_resumed_on_another_node(plugin_env, tmp_path):
    shard = tmp_path / "shard-1-of-1.jsonl"
    write_shard(plugin_env, shard, "1/1")
    fp = read_results(shard).header.fingerprint.model_dump()
    other = json.loads(json.dumps(fp))
    other["hostname"], other["cpu"]["model"] = "node7", "Other CPU"
    jobs = [{"job_id": "11", "host": fp["hostname"], "first_record": 0, "fingerprint": fp},
            {"job_id": "12", "host": "node7", "first_record": 5, "fingerprint": other}]
    out = tmp_path / "merged.jsonl"
    n, _ = merge_shards([shard], out, jobs={str(shard): jobs})
    merged = read_results(out)
    assert n == 8 and [r.info["shard"]["job_id"] for r in merged.records] == ["11"] * 5 + ["12"] * 3
    assert [r.info["shard"]["host"] for r in merged.records][5:] == ["node7"] * 3
    assert [r.info["shard"]["job"] for r in merged.records] == [0] * 5 + [1] * 3
    warning = shard_warning(merged)
    assert warning and "different machines" in warning and "Other CPU" in warning and "node7 (job 12)" in warning
    # report and compare say it too; a one-machine file does not
    warnings: list[str] = []
    build_report([merged], warnings=warnings)
    assert warning in warnings
    assert warning in compare_runs(merged, plugin_env["one"]).warnings
    assert shard_warning(plugin_env["one"]) is None
    with pytest.raises(RunnerError, match="already exists"):
        merge_shards([shard], out)
    assert merge_shards([shard], out, replace=True)[0] == 8


def test_resume_waits_for_slurm_jobs_still_running_instead_of_resubmitting_them(plugin_env, fake_slurm, tmp_path):
    out = tmp_path / "run.jsonl"
    folder = shards_folder(out)
    folder.mkdir()
    running = {k: str(int(os.environ["FAKE_SLURM_BASE"]) - k) for k in (1, 2)}  # fake sacct: RUNNING until a .rc
    (folder / "run.json").write_text(json.dumps({"jobs": {str(k): [{"job_id": j}] for k, j in running.items()}}))
    one = plugin_env["one"]
    groups = list(dict.fromkeys((json.dumps(r.case, sort_keys=True), r.pass_) for r in one.records))

    def the_jobs_finish():  # what the two jobs of the interrupted invocation do meanwhile
        time.sleep(1.0)
        for k, job_id in running.items():
            mine = {g for i, g in enumerate(groups) if i % 2 == k - 1}
            keep = {r.case_id for r in one.records if (json.dumps(r.case, sort_keys=True), r.pass_) in mine}
            write_shard(plugin_env, shard_file(folder, k, 2), f"{k}/2", keep=keep)
            (fake_slurm / f"job-{job_id}.rc").write_text("0\n")

    finisher = threading.Thread(target=the_jobs_finish)
    finisher.start()
    events = []
    try:
        summary = run_cluster(RunConfig(suite=plugin_env["suite"], out=out, resume=True),
                              ClusterConfig("slurm", 2, **FAST), on_event=events.append)
    finally:
        finisher.join()
    assert [(e.shard, e.job_id, e.reattached) for e in events if isinstance(e, JobSubmitted)] == [
        ("1/2", running[1], True), ("2/2", running[2], True)]
    assert not list(fake_slurm.glob("job-*.sh"))  # nothing submitted
    assert [s.state for s in summary.shards] == ["done", "done"]
    assert sorted(case_ids(out)) == sorted(r.case_id for r in one.records)


@pytest.mark.parametrize("args, message", [
    (["--shards", "2"], "applies only to a run split into jobs: add --executor"),
    (["--executor", "local"], "--executor needs --shards N"),
    (["--executor", "local", "--shards", "2", "--partition", "gpu"], "are options of --executor slurm"),
    (["--executor", "slurm", "--shards", "2", "--parallel"], "--parallel is for --executor local"),
    (["--executor", "slurm", "--shards", "2", "--slurm", "time=5"], "--slurm 'time=5': the sbatch option --time is not "
                                                                      "passed through: use --time-min"),
    (["--executor", "slurm", "--shards", "2", "--slurm", "account="], "is not KEY=VALUE"),
    (["--executor", "local", "--shards", "5"], "--shards 5: this run has only 4 case groups"),
    (["--executor", "local", "--shards", "2", "--shard", "1/2"], "--shard 1/2 runs one shard in this process"),
])
def test_options_of_a_split_run_are_checked_before_anything_is_submitted(plugin_env, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", plugin_env["suite"], "--out", str(tmp_path / "r.jsonl"), *args])
    assert result.exit_code in (1, 2) and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "r.jsonl.shards" / "logs").exists()


def test_without_submitit_the_executor_says_how_to_install_it(plugin_env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    result = CliRunner().invoke(cli, ["run", plugin_env["suite"], "--executor", "local", "--shards", "2",
                                      "--out", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 1 and "pip install 'invobench[slurm]'" in result.output and "Traceback" not in result.output


def test_slurm_options_become_sbatch_flags():
    assert parse_slurm_options(["account=proj", "--cpus_per_task=8", "exclusive"]) == {
        "account": "proj", "cpus-per-task": "8", "exclusive": True}
    assert jobs_file(Path("x/shard-2-of-3.jsonl")) == Path("x/shard-2-of-3.jobs.jsonl")
