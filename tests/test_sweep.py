"""Sweeps (Hydra multirun) with real short runs, and the roadmap chart from their records."""
import csv
import json
import os
import re
import statistics
import time
from types import SimpleNamespace

import pytest
from conftest import CHAIN, FAST, FULL, ROOT, clean_env, popen_cli, run_cli, wait_for_epochs
from omegaconf import OmegaConf
from wandb_log import run_info

from roadmap import roadmap_steps
from roadmap.analysis.read import records_from_dirs, records_from_wandb
from roadmap.analysis.roadmap import chart_roadmap
from roadmap.record import RunRecord, clock

pytestmark = pytest.mark.slow  # real sweeps of real runs, each job its own process

STEPS = [s.name for s in roadmap_steps()]
TINY = [*FAST, "budget.epochs=1", "budget.max_train_iters=1", "budget.max_eval_iters=1"]
# the classic recipe's multistep schedule multiplies its rate by 1e12 after epoch 1: baseline/resnet50 fails
# with a NaN loss; the enhanced recipe's cosine schedule ignores both fields
FAIL_RESNET = ["train.decay_rate=1e12", "train.decay_milestones=[1]"]
SWEPT = ["baseline/resnet50", "macro/patchify", "micro/gelu", "micro/separate_downsample"]


def sweep(sweep_dir, *args, env=None):
    return run_cli(ROOT / "run.py", "-m", *args, f"hydra.sweep.dir={sweep_dir}", env=env)


def launched_steps(stdout: str) -> list[str]:
    return re.findall(r"#\d+ : step=(\S+)", stdout)


def records(sweep_dir) -> dict:
    """Every run record under a sweep, by its directory relative to the sweep's."""
    return {p.parent.relative_to(sweep_dir).as_posix(): RunRecord.load(p) for p in sorted(sweep_dir.rglob("metrics.json"))}


def by_run(recs: dict) -> dict:
    """The same records by "<step>/seed<seed>"; each directory is <step>/<variant>/seed<seed>."""
    out = {}
    for rel, rec in recs.items():
        assert rel.startswith(rec.step + "/") and rel.endswith(f"/seed{rec.seed}"), rel
        out[f"{rec.step}/seed{rec.seed}"] = rec
    return out


def test_the_roadmap_sweep_runs_every_step_in_paper_order_in_one_wandb_group(tmp_path):
    assert "micro" not in (ROOT / "configs/sweep/roadmap.yaml").read_text().split("hydra:")[1]  # no second list
    proc = sweep(tmp_path / "s", "+sweep=roadmap", "seed=0", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert launched_steps(proc.stdout) == STEPS
    recs = by_run(records(tmp_path / "s"))
    assert sorted(recs) == sorted(f"{s}/seed0" for s in STEPS)
    assert {r.status for r in recs.values()} == {"completed"}
    assert {r.wandb_group for r in recs.values()} == {"s"}


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory):
    """Four steps x two seeds, baseline/resnet50 failing, then launched a second time."""
    d = tmp_path_factory.mktemp("sweep") / "sw"
    first = sweep(d, f"step={','.join(SWEPT)}", "seed=0,1", *FAST, *FAIL_RESNET)
    before = records(d)
    mtimes = {p: p.stat().st_mtime_ns for p in d.rglob("metrics.json")}
    second = sweep(d, f"step={','.join(SWEPT)}", "seed=0,1", *FAST, *FAIL_RESNET)
    return SimpleNamespace(dir=d, first=first, second=second, before=before, mtimes=mtimes)


@pytest.mark.xdist_group("failing_sweep")  # the sweep made once (pytest -n, --dist loadgroup)
def test_a_failed_run_is_recorded_the_sweep_goes_on_and_ends_non_zero_with_a_summary(failing_sweep):
    proc, recs = failing_sweep.first, by_run(failing_sweep.before)
    assert proc.returncode != 0
    assert launched_steps(proc.stdout) == [s for s in SWEPT for _ in (0, 1)]
    assert len(recs) == 8
    for name, rec in recs.items():
        failed = name.startswith("baseline/resnet50")
        assert rec.status == ("failed" if failed else "completed"), name
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("sweep of 8 job(s): 6 completed, 2 failed. Not completed: ")
    named = summary.split("Not completed: ", 1)[1]
    assert re.search(r"baseline/resnet50/\S*seed0", named) and re.search(r"baseline/resnet50/\S*seed1", named)
    assert "gelu" not in named
    # each with its reason; once for both where the two reasons are the same
    assert named.startswith("2 failed (NonFiniteLoss: the loss became ") or named.count(": failed (NonFiniteLoss") == 2
    # before that line, the sweep's table (one row per step: seeds, completed, mean final top-1, statuses) ...
    table = proc.stderr.strip().splitlines()[-6:-1]
    assert table[0].split() == ["step", "seeds", "done", "mean", "top-1", "statuses"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert sorted(rows) == sorted(SWEPT) and rows["baseline/resnet50"].rstrip().endswith("2 failed")
    assert rows["micro/gelu"].rstrip().endswith("2 completed")
    # ... and as sweep.csv beside the runs, the mean over the seeds' records
    import csv
    table = {r["step"]: r for r in csv.DictReader(open(failing_sweep.dir / "sweep.csv"))}
    gelu = [r.final_top1 for name, r in recs.items() if name.startswith("micro/gelu")]
    assert float(table["micro/gelu"]["mean_final_top1"]) == round(sum(gelu) / 2, 2)
    assert (table["micro/gelu"]["seeds"], table["baseline/resnet50"]["completed"]) == ("0 1", "0")


@pytest.mark.xdist_group("failing_sweep")  # the sweep made once (pytest -n, --dist loadgroup)
def test_a_relaunched_sweep_skips_completed_runs_and_retries_failed_ones(failing_sweep):
    proc, d = failing_sweep.second, failing_sweep.dir
    assert proc.returncode != 0
    # before its first job, each launch says what is left and, once epochs are timed in the folder, how long
    first = [ln for ln in failing_sweep.first.stderr.splitlines() if ln.startswith("sweep plan: ")]
    assert first[0].startswith("sweep plan: 8 job(s), 0 completed already, 8 to train; no estimate yet"), first
    failed = [r for r in failing_sweep.before.values() if r.status == "failed"]
    times = [row.epoch_time_s for r in failed for row in r.history]  # the step left to train: its own epoch times
    left = sum(r.epochs - r.epochs_done for r in failed) * statistics.fmean(times)
    timed = sum(len(r.history) for r in failing_sweep.before.values())
    second = [ln for ln in proc.stderr.splitlines() if ln.startswith("sweep plan: ")][0]
    assert second == (f"sweep plan: 8 job(s), 6 completed already, 2 to train; about {clock(left)} at 1 at a time, "
                      f"from {timed} epoch(s) timed in {d} (a step never timed there at the folder's mean)")
    assert proc.stderr.count("already completed") == 6
    after = records(d)
    for path, mtime in failing_sweep.mtimes.items():
        rel = path.parent.relative_to(d).as_posix()
        if after[rel].status == "completed":
            assert path.stat().st_mtime_ns == mtime and after[rel] == failing_sweep.before[rel]
        else:
            assert rel.startswith("baseline/resnet50") and path.stat().st_mtime_ns > mtime


@pytest.mark.xdist_group("failing_sweep")  # the sweep made once (pytest -n, --dist loadgroup)
def test_the_chart_and_tables_from_a_real_sweep_match_its_records(failing_sweep, tmp_path):
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", failing_sweep.dir, "--out", tmp_path, check=True)
    assert "6 completed runs over 3 of 17 steps, 2 failed" in proc.stdout
    for ext in ("png", "svg", "csv", "md"):
        assert (tmp_path / f"roadmap.{ext}").stat().st_size > 500
    rows = list(csv.DictReader(open(tmp_path / "roadmap.csv")))
    assert [r["step"] for r in rows] == STEPS
    recs = records(failing_sweep.dir).values()
    for row in rows:
        mine = [r for r in recs if r.step == row["step"] and r.status == "completed"]
        assert int(row["n"]) == len(mine)
        assert int(row["failed"]) == sum(r.step == row["step"] and r.status == "failed" for r in recs)
        if not mine:
            assert row["mean"] == row["std"] == ""
            continue
        top1 = [r.final_top1 for r in mine]
        assert float(row["mean"]) == pytest.approx(statistics.fmean(top1))
        assert float(row["std"]) == pytest.approx(statistics.stdev(top1))
        assert (float(row["min"]), float(row["max"])) == (min(top1), max(top1))
        assert float(row["gmacs"]) == pytest.approx(mine[0].gmacs)
        assert float(row["images_per_s"]) == pytest.approx(statistics.fmean(r.images_per_s for r in mine))
    md = (tmp_path / "roadmap.md").read_text()
    assert "Failed runs (2):" in md and "baseline/resnet50 seed 1: NonFiniteLoss" in md


def _record(path, step, seed, top1, status="completed", **extra):
    path.mkdir(parents=True)
    rec = {"step": step, "seed": seed, "data": "cifar100", "budget": "short", "status": status,
           "final_top1": top1 if status == "completed" else None, "best_top1": top1, "gmacs": 0.1,
           "params": 1000, "images_per_s": 500.0, "reason": None if status == "completed" else "OutOfMemoryError"}
    (path / "metrics.json").write_text(json.dumps(rec | extra))


def test_hand_made_records_missing_steps_failed_runs_one_seed_and_side_branches(tmp_path):
    d = tmp_path / "runs"
    for seed, top1 in enumerate([70.0, 72.0, 74.0]):
        _record(d / f"move{seed}", "large_kernel/move_up", seed, top1)
    _record(d / "k5", "large_kernel/k5", 0, 75.0)                       # one seed, a side branch
    _record(d / "k7a", "large_kernel/k7", 0, 76.0)
    _record(d / "k7b", "large_kernel/k7", 1, 77.0)
    _record(d / "k7c", "large_kernel/k7", 2, None, status="failed")
    _record(d / "k9", "large_kernel/k9", 0, 78.0)
    _record(d / "gelu", "micro/gelu", 0, None, status="failed")         # failed, no completed run
    recs = records_from_dirs([d])
    rows, failed = chart_roadmap(recs, tmp_path)
    by = {r.step: r for r in rows}
    assert [r.step for r in rows] == STEPS and len(recs) == 9 and len(failed) == 2
    assert (by["large_kernel/move_up"].mean, by["large_kernel/move_up"].std) == (72.0, 2.0)
    assert by["large_kernel/k5"].n == 1 and by["large_kernel/k5"].std is None
    assert by["large_kernel/k5"].delta == 3.0   # against move_up, the previous adopted step
    assert by["large_kernel/k7"].delta == 4.5 and by["large_kernel/k7"].failed == 1
    assert by["large_kernel/k9"].delta == 1.5   # against k7, not against the side branch k5
    assert by["micro/gelu"].n == 0 and by["micro/gelu"].failed == 1 and by["micro/gelu"].mean is None
    assert by["micro/fewer_acts"].delta is None  # its predecessor has no completed run
    rows_csv = list(csv.DictReader(open(tmp_path / "roadmap.csv")))
    k5 = next(r for r in rows_csv if r["step"] == "large_kernel/k5")
    assert (k5["n"], k5["mean"], k5["std"], k5["adopted"]) == ("1", "75.0", "", "False")
    md = (tmp_path / "roadmap.md").read_text()
    assert "kernel size -> 5 (not adopted)" in md and "Steps with no completed run: baseline/resnet50" in md
    assert "micro/gelu seed 0: OutOfMemoryError" in md


def test_records_of_different_datasets_are_not_averaged_together(tmp_path):
    _record(tmp_path / "a", "micro/gelu", 0, 70.0)
    _record(tmp_path / "b", "micro/gelu", 1, 90.0, data="cifar10")
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", tmp_path, "--out", tmp_path / "o")
    assert proc.returncode != 0 and "mix datasets" in proc.stderr


def test_records_from_the_wandb_api(tmp_path):
    def run(step, seed, top1, state="finished"):
        return SimpleNamespace(
            config={"step": {"name": step, "label": step}, "seed": seed, "data": {"name": "cifar100"},
                    "budget": {"name": "short"}}, state=state, url=f"https://wandb.ai/x/{step}/{seed}",
            summary={"status": "completed" if state == "finished" else None, "final_top1": top1, "gmacs": 0.1,
                     "params": 10, "images_per_s": 5.0, "best_top1": top1})

    class Api:
        def runs(self, path, filters):
            assert (path, filters) == ("me/roadmap", {"group": "cifar100-short"})
            return [run("micro/gelu", 0, 60.0), run("micro/gelu", 1, 62.0), run("convnext_t", 0, None, "crashed")]

    recs = records_from_wandb("me/roadmap", "cifar100-short", api=Api())
    rows, failed = chart_roadmap(recs, tmp_path)
    gelu = next(r for r in rows if r.step == "micro/gelu")
    assert (gelu.n, gelu.mean) == (2, 61.0) and len(failed) == 1 and failed[0].status == "crashed"


def test_the_slurm_launcher_config_composes_with_its_documented_fields():
    proc = run_cli(ROOT / "run.py", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                   "hydra.launcher.gpus_per_node=4", "--cfg", "hydra", check=True)
    launcher = proc.stdout.split("launcher:")[1]
    assert "SlurmLauncher" in launcher and "partition: gpu" in launcher and "gpus_per_node: 4" in launcher
    assert "tasks_per_node: ${.gpus_per_node}" in launcher  # one process per GPU
    assert "max_num_timeout: 20" in launcher and "timeout_min: 2880" in launcher


def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    proc = sweep(tmp_path / "s", "hydra/launcher=submitit_local", "step=micro/gelu", "seed=0", *TINY,
                 env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert by_run(records(tmp_path / "s"))["micro/gelu/seed0"].status == "completed"


SWEEP_FAST = [o for o in FAST if not o.startswith("model.depths")] + ["model.depths=[1,1,1,1]", "budget.epochs=1",
                                                                    "budget.max_train_iters=2",
                                                                    "budget.max_eval_iters=1"]


def test_two_copies_of_one_sweep_on_one_directory_each_count_their_own_jobs_truly(tmp_path):
    """Both launch the same 3 jobs at once: the run locks let each run train once, and each copy's line counts its
    own 3 jobs (those the other held are refused there), exiting non-zero exactly when one did not complete."""
    import subprocess
    sweep = tmp_path / "s"
    cmd = [ROOT / "run.py", "-m", "step=macro/patchify,micro/gelu,micro/layer_norm", *SWEEP_FAST,
           f"hydra.sweep.dir={sweep}"]
    procs = [popen_cli(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outs):
        line = next(ln for ln in reversed(err.splitlines()) if ln.startswith("sweep of "))
        counts = {k: int(n) for n, k in (part.split(" ", 1) for part in
                                         line.split(": ", 1)[1].split(". Not")[0].split(" (")[0].split(", "))}
        assert line.startswith("sweep of 3 job(s): ") and sum(counts.values()) == 3, line
        assert set(counts) <= {"completed", "refused"}, line
        assert (proc.returncode == 0) == (counts.get("completed") == 3), (proc.returncode, line)
    recs = [json.loads(p.read_text()) for p in sweep.rglob("metrics.json")]
    assert len(recs) == 3 and all(r["status"] == "completed" for r in recs)
    assert not list((sweep / ".jobs").glob("*/*.json"))  # each launch cleared its own markers, and only those


@pytest.mark.parametrize("launcher, target, sig", [("basic", "group", "SIGTERM"), ("joblib", "group", "SIGTERM"),
                                                   ("joblib", "parent", "SIGTERM"), ("joblib", "group", "SIGHUP")])
def test_a_signal_to_a_sweep_still_prints_its_line(tmp_path, launcher, target, sig):
    """SIGTERM to the sweep's process group, or to its first process alone (`kill PID`): the running job records
    `interrupted`, and the sweep says so in its last line, with the job it never started; exit 143. With the joblib
    launcher the jobs run in other processes, which the sweep tells when it alone got the signal. SIGHUP (the
    terminal closed) alike, exit 129."""
    import signal
    import subprocess
    sweep = tmp_path / "s"
    # 50 epochs: the signal comes after the first job's first epoch, and under load the other joblib job, started
    # seconds later or sooner, had once completed all of 3 epochs by then
    cmd = [ROOT / "run.py", "-m", "step=micro/gelu", "seed=0,1", *SWEEP_FAST, "budget.epochs=50",
           "budget.max_train_iters=20", f"hydra.sweep.dir={sweep}"]
    if launcher == "joblib":
        cmd += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = popen_cli(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list(sweep.glob("micro/gelu/*/seed0/metrics.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    run = next(sweep.glob("micro/gelu/*/seed0"))  # the variant part names the budget overrides
    wait_for_epochs(run, 1, proc)
    t0 = time.time()
    sig = signal.Signals[sig]
    os.killpg(proc.pid, sig) if target == "group" else os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert time.time() - t0 < 45, "the jobs were not told: they trained on until the launcher's workers died"
    assert proc.returncode == 128 + sig, err[-2000:]
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"
    line = [ln for ln in err.splitlines() if ln.startswith("sweep of ")]
    assert len(line) == 1 and line[0].startswith(f"sweep of 2 job(s), stopped by {sig.name}: "), err[-2000:]
    assert err.strip().splitlines()[-1] == line[0], err[-2000:]  # nothing after it (a leaked-semaphore warning)
    counts = dict(reversed(part.split(" ", 1)) for part in line[0].split(": ", 1)[1].split(". Not")[0].split(", "))
    if launcher == "basic":
        assert counts == {"interrupted": "1", "never started": "1"}, line
    else:  # joblib starts both jobs at once: the second may be interrupted, killed mid-start, or not started yet
        assert int(counts.pop("interrupted")) >= 1 and "completed" not in counts, line
        assert sum(map(int, counts.values())) <= 1, line


def test_a_joblib_job_whose_process_is_killed_ends_the_sweep_with_its_line_and_a_relaunch_completes_it(tmp_path):
    """A worker killed with SIGKILL (the kernel's out-of-memory killer): joblib ends the sweep with its error and
    kills the other worker; the sweep's line still comes last, counting the killed runs and the job never started,
    and the same command again completes every run."""
    import signal
    import subprocess
    sweep = tmp_path / "s"
    cmd = [ROOT / "run.py", "-m", "step=micro/gelu", "seed=0,1,2", *SWEEP_FAST, "budget.epochs=3",
           "budget.max_train_iters=20", f"hydra.sweep.dir={sweep}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = popen_cli(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list(sweep.glob("micro/gelu/*/seed0/metrics.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    run = next(sweep.glob("micro/gelu/*/seed0"))
    wait_for_epochs(run, 1, proc)
    worker = next(json.loads(p.read_text())["pid"] for p in sweep.glob(".jobs/*/*.json")
                  if json.loads(p.read_text())["num"] == 0)
    os.kill(worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-2000:]
    assert "TerminatedWorkerError" in err  # joblib's own error, then the sweep's line
    line = err.strip().splitlines()[-1]
    assert line.startswith("sweep of 3 job(s), stopped by the error above: "), err[-2000:]
    counts = dict(reversed(part.split(" ", 1)) for part in line.split(": ", 1)[1].split(". Not")[0].split(", "))
    # the other job may have completed first (its worker started seconds earlier on a busy machine): counted truly
    completed = [r.status for r in map(RunRecord.read, sweep.rglob("metrics.json")) if r].count("completed")
    assert counts.get("killed") in ("1", "2") and completed < 2 and counts.get("completed", "0") == str(completed) and \
        sum(map(int, counts.values())) == 3, line
    assert json.loads((run / "metrics.json").read_text())["epochs_done"] >= 1
    again = run_cli(*cmd)
    assert again.returncode == 0 and again.stderr.strip().splitlines()[-1].startswith(
        "sweep of 3 job(s): 3 completed"), again.stderr[-2000:]


def test_a_leave_one_out_sweep_runs_and_charts_drops_from_the_full_model(tmp_path):
    """Three of the undone steps and the full model, two seeds, one iteration each."""
    d = tmp_path / "loo"
    tiny = [*FAST, "budget.epochs=1", "budget.max_train_iters=1", "budget.max_eval_iters=1"]
    proc = run_cli(ROOT / "run.py", "-m", "+sweep=leave_one_out", "seed=0,1", *tiny, f"hydra.sweep.dir={d}",
                   "undo=null,macro/patchify,micro/gelu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {p.parent.relative_to(d).as_posix(): json.loads(p.read_text()) for p in d.rglob("metrics.json")}
    assert all(rel.split("/")[-2].startswith("v-") for rel in recs)  # <step>/[without/<step>/]<variant>/seed<n>
    dirs = {rel.split("/v-")[0] for rel in recs}
    assert dirs == {FULL, f"{FULL}/without/macro/patchify", f"{FULL}/without/micro/gelu"}
    assert {(r["undo"], r["seed"], r["status"], r["regime"]) for r in recs.values()} == \
        {(u, s, "completed", "r50") for u in (None, "macro/patchify", "micro/gelu") for s in (0, 1)}
    gelu = next(rel for rel, r in recs.items() if r["undo"] == "micro/gelu")
    assert OmegaConf.load(d / gelu / "config.yaml").model.activation == "relu"
    out = tmp_path / "chart"
    env = clean_env(WANDB_MODE="offline", HOME=str(tmp_path / "home"))
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", d, "--out", out, "--log-wandb", env=env, check=True)
    assert "6 completed runs over 2 of 12 undone steps and the full model, 0 failed" in proc.stdout
    (run,) = (out / "wandb").glob("offline-run-*")  # --log-wandb: the leave-one-out chart as a W&B chart run
    info = run_info(run)
    assert (info["job_type"], info["tags"]) == ("chart", ["chart", "leave_one_out"])
    assert {"leave_one_out/chart/path", "leave_one_out/table/path"} <= info["history_keys"]
    (image,) = (run / "files/media/images").rglob("*.png")
    assert image.stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "leave_one_out.csv")))
    assert [r["undo"] for r in rows] == ["", *CHAIN]  # steps without a run are shown as such
    assert [r["undo"] for r in rows if r["n"] != "0"] == ["", "macro/patchify", "micro/gelu"]
    rows = [r for r in rows if r["n"] != "0"]
    assert (out / "leave_one_out.png").stat().st_size > 10_000
    full = {r["seed"]: r["final_top1"] for r in recs.values() if r["undo"] is None}
    patch = {r["seed"]: r["final_top1"] for r in recs.values() if r["undo"] == "macro/patchify"}
    expected = sum(patch[s] - full[s] for s in (0, 1)) / 2
    assert float(rows[1]["delta"]) == pytest.approx(expected) and rows[1]["delta_method"] == "paired, n=2"


def test_a_sweep_over_any_field_gets_a_directory_per_combination_and_counts_every_job(tmp_path):
    sweep = tmp_path / "s"
    fast = [o for o in FAST if not o.startswith("model.depths")] + ["budget.epochs=1", "budget.max_train_iters=1",
                                                                   "budget.max_eval_iters=1"]
    proc = run_cli(ROOT / "run.py", "-m", "step=micro/gelu", "model.kernel_size=3,5", "model.depths=[1,1,1,1]",
                   *fast, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(sweep)
    assert len(recs) == 2 and {r.status for r in recs.values()} == {"completed"}
    kernels = sorted(r.variant for r in recs.values())
    assert [("model.kernel_size=3" in v, "model.kernel_size=5" in v) for v in kernels] == [(True, False),
                                                                                           (False, True)]
    assert "sweep of 2 job(s): 2 completed" in proc.stderr
    assert "job 1 of 2: step=micro/gelu model.kernel_size=3" in proc.stderr and "job 2 of 2: " in proc.stderr
    ends = [ln for ln in proc.stderr.splitlines() if "] - completed micro/gelu seed 0: final top-1 " in ln]
    assert len(ends) == 2 and all("record " in ln and ln.endswith("metrics.json") for ln in ends)
    bars = proc.stderr.replace("\r", "\n")
    assert "micro/gelu seed 0 epoch 1/1" in bars and "run_left=" in bars and "evaluation" in bars
    for rel, rec in recs.items():
        overrides = (sweep / rel / "overrides.yaml").read_text()
        assert rec.variant.split(",")[0] in overrides and "seed0" in rel
    # a relaunch with one run's checkpoint corrupt: that job is refused, the other skipped, the exit non-zero
    victim = next(iter(recs))
    (sweep / victim / "checkpoint.pt").write_bytes(b"junk")
    again = run_cli(ROOT / "run.py", "-m", "step=micro/gelu", "model.kernel_size=3,5", "model.depths=[1,1,1,1]",
                    *fast, f"hydra.sweep.dir={sweep}")
    assert again.returncode == 1
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("sweep of 2 job(s): 1 completed, 1 refused. Not completed: ") and "cannot be read" in last


def started_summary(sweep_dir):
    """The summary callback of a sweep of steps a, b x seeds 0, 1, 2 in `sweep_dir`, started, and its launch's
    folder of job markers (made)."""
    from roadmap.sweep import SweepSummary
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "sweeper": {
        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": {"step": "a,b"}},
        "overrides": {"task": ["seed=0,1,2"]}}})
    summary = SweepSummary()
    summary.on_multirun_start(cfg)
    jobs = summary._jobs_dir(cfg)
    jobs.mkdir(parents=True)
    return summary, cfg, jobs


def test_the_sweep_summary_counts_jobs_that_never_started_were_killed_or_were_interrupted(tmp_path):
    summary, cfg, jobs = started_summary(tmp_path)
    assert summary.expected == 6
    # "started": the job never reported its end. seed3's run has no record; seed4's says running, but no process
    # holds its lock (killed); seed5's says interrupted (the signal reached the run before the sweep stopped)
    outcomes = ["completed", "completed", "failed", "started", "started", "started"]
    for seed, status in ((4, "running"), (5, "interrupted")):
        run = tmp_path / f"a/seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"status": status}))
        (run / ".lock").write_text("{}")
    long = f"CorruptCheckpoint: checkpoint {tmp_path}/a/seed2/checkpoint.pt cannot be read." + \
        " Move it away and rerun." * 10 + "\nsecond line"
    for i, status in enumerate(outcomes):
        (jobs / f"{i}.json").write_text(json.dumps({"num": i, "overrides": [f"seed={i}"], "status": status,
                                                    "run_dir": str(tmp_path / f"a/seed{i}"),
                                                    "reason": long if status == "failed" else None}))
    with pytest.raises(SystemExit) as e:
        summary.on_multirun_end(cfg)
    # the failed job's reason: its first line, without the run's own directory in its paths, cut at a word
    assert str(e.value) == ("sweep of 6 job(s): 2 completed, 1 failed, 2 interrupted, 1 killed. Not completed: "
                            "a/seed2: failed (CorruptCheckpoint: checkpoint checkpoint.pt cannot be read."
                            + " Move it away and rerun." * 4 + " …); "
                            "2 interrupted: a/seed3, a/seed5; a/seed4: killed")  # alike, named once
    assert not jobs.exists()  # this launch's markers, counted, are gone; another launch's would stay


def test_jobs_that_failed_alike_are_named_once_with_their_count(tmp_path):
    """A sweep of 51 jobs that all fail for one reason (a dataset not found): one reason, not 51 of them."""
    summary, cfg, jobs = started_summary(tmp_path)
    for i, (step, seed) in enumerate((s, n) for n in range(3) for s in "ab"):
        run = tmp_path / step / f"seed{seed}"
        reason = "DataError: Fashion-MNIST files not found: /none/train-images-idx3-ubyte.gz" if i != 4 else \
            f"WriteFailed: could not write {run}/metrics.json (No space left on device)"
        (jobs / f"{i}.json").write_text(json.dumps({"num": i, "overrides": [f"step={step}", f"seed={seed}"],
                                                    "status": "failed", "run_dir": str(run), "reason": reason}))
    with pytest.raises(SystemExit) as e:
        summary.on_multirun_end(cfg)
    assert str(e.value) == (
        "sweep of 6 job(s): 6 failed. Not completed: 5 failed (DataError: Fashion-MNIST files not found: "
        "/none/train-images-idx3-ubyte.gz): a/seed0, b/seed0, a/seed1 and 2 more; "
        "a/seed2: failed (WriteFailed: could not write metrics.json (No space left on device))")


@pytest.mark.parametrize("pipeline", ["auto", "workers"])
def test_a_joblib_sweep_starts_loader_workers_inside_its_jobs(tmp_path, pipeline):
    """Two jobs side by side (loky worker processes), each starting its own DataLoader workers: the automatic
    pipeline's probe (data.pipeline=auto) and the workers pipeline itself; before, every job failed with
    "'Process' object has no attribute 'env'"."""
    tiny = [o for o in TINY if o != "data.num_workers=0"]
    proc = sweep(tmp_path / "s", "step=micro/gelu,macro/patchify", "seed=0", *tiny, "data.num_workers=2",
                 f"data.pipeline={pipeline}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 f"paths.output_dir={tmp_path / 'out'}")  # no choice kept: the probe runs in the jobs
    assert proc.returncode == 0 and "'Process' object has no attribute" not in proc.stderr, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "s").rglob("metrics.json")]
    assert len(records) == 2 and all(r["status"] == "completed" for r in records)
    assert all(r["pipeline"] == "workers" or pipeline == "auto" for r in records)
    if pipeline == "auto":  # the probe timed the workers pipeline (in each job, or in one and kept)
        assert all(r["pipeline_probe"]["workers"] > 0 for r in records)
        assert "data.pipeline=auto chose" in proc.stderr
    # side by side, progress comes as whole lines (no carriage return redraws one job's bar over the other's), each
    # naming its run, and every line a job logs names its job
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "\r" not in proc.stderr
    bars = [ln for ln in lines if " epoch 1/1" in ln and "% " in ln and " - " not in ln]
    assert {ln.split(" seed 0 epoch")[0].replace("evaluation of ", "") for ln in bars} == {"micro/gelu",
                                                                                           "macro/patchify"}
    logged = [ln for ln in lines if "][roadmap" in ln]
    assert logged and all(re.search(r"\] - job [12] \((micro/gelu|macro/patchify) seed 0\): ", ln) for ln in logged)


def test_what_every_job_would_be_refused_for_is_refused_before_the_first_in_one_line(tmp_path):
    """A dataset not found, for a sweep of 51 jobs: one line and nothing written, not 51 failed runs; where the
    jobs differ in what they read or in their batch size, each checks itself as it starts."""
    from omegaconf import open_dict

    from roadmap.config.compose import compose_dict
    from roadmap.sweep import refusal_of_every_job

    def sweep_config(*task):
        cfg = compose_dict(None, ["hydra/sweeper=basic"], hydra=True)
        with open_dict(cfg):
            cfg.hydra.overrides.task = [t for t in task if "," not in t]
            cfg.hydra.sweeper.params = {t.split("=")[0]: t.split("=")[1] for t in task if "," in t}
            for t in task:  # the values the jobs share, as Hydra composes a sweep's config
                if "," not in t:
                    OmegaConf.update(cfg, t.split("=")[0], t.split("=")[1], merge=True)
        return cfg
    missing = ["data.name=fashion_mnist", "data.root=/nonexistent"]
    refusal = refusal_of_every_job(sweep_config(*missing, "step=micro/gelu,macro/patchify", "seed=0,1,2"))
    assert refusal.startswith("Fashion-MNIST files not found: /nonexistent/"), refusal
    assert refusal_of_every_job(sweep_config(*missing, "model.kernel_size=5,7", "train.base_lr=0.1,0.2")) \
        is not None
    for swept in ("data.root=/nonexistent,/usr", "train.batch_size=16,32", "data.name=cifar10,fashion_mnist",
                  "system.device=cpu,cuda"):
        shared = [t for t in missing if t.split("=")[0] != swept.split("=")[0]]
        assert refusal_of_every_job(sweep_config(*shared, swept)) is None, swept
    assert refusal_of_every_job(sweep_config("data.name=fashion_mnist_small", "step=micro/gelu,macro/patchify")) \
        is None
    # a SLURM job's node has its own data and devices: not checked on the machine that submits it
    slurm = sweep_config(*missing, "seed=0,1")
    with open_dict(slurm):
        slurm.hydra.launcher = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}
    assert refusal_of_every_job(slurm) is None


@pytest.mark.slow
def test_a_sweep_whose_dataset_is_not_there_stops_in_one_line_writing_nothing(tmp_path):
    proc = sweep(tmp_path / "s", "+experiment=femto_converged_cpu", "data.root=/nonexistent")
    assert proc.returncode == 1 and not (tmp_path / "s").exists(), proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: Fashion-MNIST files not found: /nonexistent/train-images-idx3-ubyte.gz, /nonexistent/train-labels-"
        "idx1-ubyte.gz. Install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist), or put the four "
        "idx .gz files from https://github.com/zalandoresearch/fashion-mnist in one folder and set data.root to it."]
    # jobs that read different data each check theirs: each fails, its reason named once (once its type too)
    proc = sweep(tmp_path / "s", "step=micro/gelu", "data=fashion_mnist", "data.root=/nonexistent,/nonexistent2",
                 *FAST)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("sweep of 2 job(s): 2 failed. Not completed: "), last
    assert last.count(": failed (DataError: Fashion-MNIST files not found: /nonexistent") == 2, last
    assert "DataError: DataError" not in proc.stderr and "Error: Error" not in last, proc.stderr[-3000:]
