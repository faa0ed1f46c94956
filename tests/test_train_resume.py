"""Records you can trust: exact resume, every way a run ends recorded, one writer per run directory."""
import json
import os
import pty
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import (
    FAST,
    ROOT,
    clean_env,
    interrupt_after,
    kill_inside,
    last_wins,
    load,
    popen_cli,
    run_cli,
    start_cli,
    train_cli,
    wait_for_epochs,
)

from roadmap.record import RunRecord
from roadmap.train.lifecycle import KILLED
from roadmap.train.lock import is_held

pytestmark = pytest.mark.slow  # runs killed, signalled and resumed, each its own process

TIMING = ("images_per_s", "eval_images_per_s", "epoch_time_s")
SUMMARY = ("best_top1", "final_top1", "epochs_done", "images_per_s", "wall_time_s")
# four epochs of 6 iterations: long enough to be killed anywhere, short enough for CI
LONG = ["step=micro/separate_downsample", "budget.epochs=4", "budget.max_train_iters=6"]


def numbers(rec: RunRecord) -> list[dict]:
    """Every recorded number but the timings."""
    return [{k: v for k, v in row.to_dict().items() if k not in TIMING} for row in rec.history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference run of each pipeline, never interrupted (the workers pipeline with 0 workers)."""
    out = {}
    for pipeline in ("workers", "device"):
        d = tmp_path_factory.mktemp("whole") / pipeline
        train_cli(d, *LONG, f"data.pipeline={pipeline}")
        out[pipeline] = load(d)
    return out


@pytest.mark.xdist_group("uninterrupted")  # one process makes the reference runs once (pytest -n --dist loadgroup)
@pytest.mark.parametrize("pipeline,workers", [("workers", 0), ("workers", 3), ("device", 0)])
def test_sigkill_anywhere_then_resume_repeats_the_uninterrupted_numbers_whatever_the_workers(
        tmp_path, uninterrupted, pipeline, workers):
    rng = random.Random(workers + 7 * (pipeline == "device"))
    # the epoch to kill in, and how far into it: a fraction of the reference run's epoch, so that the kill lands
    # inside the run however fast the machine is (a fixed delay outlived the last epoch on a quiet machine)
    epoch, fraction = rng.randrange(4), rng.uniform(0.0, 0.6)
    delay = fraction * uninterrupted[pipeline].history[epoch].epoch_time_s
    run = kill_inside(tmp_path / "run", [*LONG, f"data.num_workers={workers}", f"data.pipeline={pipeline}"],
                      epoch, delay, epochs=4)
    assert load(run).status == "running" and load(run).epochs_done < 4
    done = torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] if (run / "checkpoint.pt").exists() else 0
    train_cli(run, *LONG, f"data.num_workers={workers}", f"data.pipeline={pipeline}")
    resumed = load(run)
    assert resumed.status == "completed" and resumed.epochs_done == 4
    assert resumed.interruptions == [{"epochs_done": done, "status": "killed", "signal": None, "reason": KILLED}]
    assert uninterrupted[pipeline].interruptions == []
    assert numbers(resumed) == numbers(uninterrupted[pipeline])
    assert numbers(uninterrupted["device"]) != numbers(uninterrupted["workers"])  # two pipelines, really


@pytest.mark.slow
def test_sigkill_then_resume_repeats_the_uninterrupted_numbers_with_torch_compile(tmp_path):
    """system.compile=true on the CPU: killed in its second epoch (after compiling), resumed (compiling again),
    the record equals that of a compiled run never interrupted."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    compiled = [*LONG, "budget.epochs=3", "data.pipeline=device", "system.compile=true"]
    train_cli(whole, *compiled)
    reference = load(whole)
    run = kill_inside(run, compiled, 1, 0.3 * reference.history[1].epoch_time_s, epochs=3)
    assert load(run).status == "running"
    train_cli(run, *compiled)
    assert load(run).status == "completed" and numbers(load(run)) == numbers(reference)


@pytest.mark.slow
def test_sigkill_of_a_sweep_under_the_joblib_launcher_then_relaunch_repeats_the_uninterrupted_numbers(tmp_path):
    """Two jobs side by side (hydra/launcher=joblib, n_jobs=2), the whole process group killed with SIGKILL while
    both train; launched again, the sweep finishes each run with the numbers of the same sweep never interrupted.
    Then the sweep's main process alone killed so (`kill -9 PID`, which it cannot pass on to its jobs): the jobs
    stop at their next batch, recorded as interrupted and why, instead of training on unseen; launched again, the
    same numbers."""
    # 16 epochs: the two jobs start up to a second apart, and a 4-epoch run on a fast CI machine had completed
    # before the other finished its first epoch, so there was no moment with both training to kill
    sweep_args = [*LONG, "budget.epochs=16", "seed=0,1", "data.pipeline=device", "hydra/launcher=joblib",
                  "hydra.launcher.n_jobs=2"]

    def launch(d, **kw):
        return popen_cli(ROOT / "run.py", "-m", *FAST, *sweep_args, f"hydra.sweep.dir={d}",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

    def by_seed(d):
        return {rec.seed: rec for rec in map(RunRecord.load, d.rglob("metrics.json"))}

    assert launch(tmp_path / "whole").wait(timeout=600) == 0
    reference = by_seed(tmp_path / "whole")
    killed = tmp_path / "killed"
    proc = launch(killed, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (
            len(runs := by_seed(killed)) == 2 and all(r.epochs_done >= 1 for r in runs.values())):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    runs = by_seed(killed)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before both jobs had trained an epoch"
    assert {s: r.status for s, r in runs.items()} == {0: "running", 1: "running"}
    assert launch(killed).wait(timeout=600) == 0
    again = by_seed(killed)
    assert all(again[s].status == "completed" and numbers(again[s]) == numbers(reference[s]) for s in (0, 1))
    assert numbers(reference[0]) != numbers(reference[1])

    orphaned = tmp_path / "orphaned"
    proc, deadline = launch(orphaned, start_new_session=True), time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (
            len(runs := by_seed(orphaned)) == 2 and all(r.epochs_done >= 1 for r in runs.values())):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the sweep ended before both jobs had trained an epoch"
    stopped = time.time() + 60
    while time.time() < stopped and any(is_held(d) for d in {p.parent for p in orphaned.rglob("metrics.json")}):
        time.sleep(0.1)
    runs = by_seed(orphaned)
    cause = f"interrupted: the sweep that started it ended (its process {proc.pid} is gone)"
    assert {s: (r.status, r.signal, r.reason) for s, r in runs.items()} == {
        s: ("interrupted", None, cause) for s in (0, 1)}, "the jobs trained on after their sweep was killed"
    assert all(r.epochs_done < 16 for r in runs.values())
    assert launch(orphaned).wait(timeout=600) == 0
    again = by_seed(orphaned)
    assert all(again[s].status == "completed" and numbers(again[s]) == numbers(reference[s]) for s in (0, 1))
    assert all(again[s].interruptions == [{"epochs_done": runs[s].epochs_done, "status": "interrupted",
                                           "signal": None, "reason": cause}] for s in (0, 1))


@pytest.mark.xdist_group("uninterrupted")
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_is_recorded_as_interrupted_in_one_line_and_the_run_resumes(tmp_path, uninterrupted, sig, code):
    # to the whole process group, loader workers included, as Ctrl-C in a terminal and SLURM's scancel do
    run = tmp_path / "run"
    proc = start_cli(run, *LONG, "data.num_workers=2", "data.pipeline=workers", start_new_session=True)
    wait_for_epochs(run, 1, proc)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    assert proc.returncode == code
    rec = load(run)
    assert (rec.status, rec.signal) == ("interrupted", sig.name) and sig.name in rec.reason
    assert rec.epochs_done >= 1 and torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == \
        rec.epochs_done
    log = (tmp_path / "run.log").read_text()
    assert "Traceback" not in log
    line = [ln for ln in log.replace("\r", "\n").splitlines() if "interrupted by" in ln]
    assert len(line) == 1 and "Run the same command again to resume" in line[0]
    resumed = train_cli(run, *LONG, "data.pipeline=workers")
    assert numbers(load(run)) == numbers(uninterrupted["workers"]) and load(run).status == "completed"
    assert load(run).interruptions == [{"epochs_done": rec.epochs_done, "status": "interrupted", "signal": sig.name,
                                        "reason": rec.reason}]  # the completed record says how its first part ended
    assert f"resuming {run} from its checkpoint after epoch {rec.epochs_done} of 4" in resumed.stderr


@pytest.mark.xdist_group("uninterrupted")
def test_a_run_whose_terminal_closes_records_sighup_and_resumes_and_one_under_nohup_trains_on(tmp_path, uninterrupted):
    """An SSH session that drops: the kernel sends SIGHUP to the terminal's processes, loader workers included, and
    every later write to the terminal fails. The run still records how it ended, in one line of its log. Under
    `nohup` (SIGHUP ignored) the same signal leaves the run training."""
    run = tmp_path / "run"
    cmd = [sys.executable, *last_wins([ROOT / "run.py", *FAST, *LONG, "data.num_workers=2", "data.pipeline=workers",
                                       f"hydra.run.dir={run}"])]
    pid, terminal = pty.fork()  # the child's controlling terminal is a pseudo-terminal that the test holds open
    if pid == 0:
        try:
            os.chdir(ROOT)
            os.execve(cmd[0], cmd, clean_env())
        finally:
            os._exit(127)
    deadline = time.time() + 300
    while (load_if_any(run).epochs_done < 1 or load_if_any(run).status != "running") and time.time() < deadline:
        if select.select([terminal], [], [], 0.05)[0]:
            os.read(terminal, 1 << 16)  # what the run writes on its terminal, read so that it never blocks
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the run ended before its first epoch"
    os.close(terminal)  # the terminal hangs up
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129
    rec = load(run)
    assert (rec.status, rec.signal, rec.reason) == ("interrupted", "SIGHUP", "interrupted by SIGHUP")
    assert rec.epochs_done >= 1 and torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == rec.epochs_done
    log = (run / "run.log").read_text()
    assert "Traceback" not in log and log.count("interrupted by SIGHUP") == 1
    train_cli(run, *LONG, "data.pipeline=workers")
    assert numbers(load(run)) == numbers(uninterrupted["workers"]) and load(run).status == "completed"

    kept = tmp_path / "nohup"  # `nohup python run.py ...`, its SIGHUP sent by hand
    proc = subprocess.Popen(["nohup", *cmd[:-1], f"hydra.run.dir={kept}"], cwd=ROOT, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_epochs(kept, 1, proc)
    os.killpg(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=120) == 0
    assert numbers(load(kept)) == numbers(uninterrupted["workers"]) and load(kept).interruptions == []


def load_if_any(run_dir) -> RunRecord:
    return RunRecord.read(run_dir / "metrics.json") or RunRecord(status="none")


def test_a_run_resumed_by_other_code_or_on_another_machine_keeps_each_parts_commit_and_hardware(tmp_path):
    """A resumed run's record names the code and machine of its last part, and keeps those of an earlier part that
    differ (here the first part's commit is made another's, as a checkpoint of an older checkout would say, and the
    second part runs with another number of threads); parts on the same code and machine are one part."""
    run, overrides = tmp_path / "run", [*LONG, "budget.epochs=6"]
    first = interrupt_after(run, 1, *overrides)
    assert first.status == "interrupted" and first.earlier_parts == [] and first.git_commit
    threads = 1 if first.hardware["threads"] != 1 else 2
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    head, state["record"]["git_commit"] = state["record"]["git_commit"], "f" * 40
    torch.save(state, run / "checkpoint.pt")
    second = interrupt_after(run, first.epochs_done + 1, *overrides, f"system.threads={threads}")
    assert second.status == "interrupted"
    train_cli(run, *overrides, f"system.threads={threads}")
    last = load(run)
    assert last.status == "completed" and last.epochs_done == 6 and second.epochs_done > first.epochs_done
    assert (last.git_commit, last.hardware["threads"]) == (head, threads)
    assert last.earlier_parts == [{"until_epoch": first.epochs_done, "git_commit": "f" * 40,
                                   "hardware": first.hardware}]


def test_a_full_disk_keeps_the_last_good_checkpoint_leaves_no_temporary_file_and_says_so(tmp_path):
    run = tmp_path / "run"
    epoch = interrupt_after(run, 1, *LONG).epochs_done
    good = (run / "checkpoint.pt").read_bytes()
    # no file may grow beyond 1 MB: the next checkpoint cannot be written (Python ignores SIGXFSZ, so the
    # write fails with EFBIG, as it would with ENOSPC on a full disk); the small record can
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))  # noqa: E731
    proc = train_cli(run, *LONG, check=False, preexec_fn=limit)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if "ERROR" in ln]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert f"could not write {run / 'checkpoint.pt'}" in errors[0]
    assert f"ast good checkpoint ({run / 'checkpoint.pt'}, epoch {epoch}) was kept" in errors[0]
    assert (run / "checkpoint.pt").read_bytes() == good
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoint.pt", "config.yaml", "metrics.json",
                                                       "overrides.yaml", "run.log", "summary.csv"]
    assert len((run / "summary.csv").read_text().splitlines()) == 1 + epoch  # the epochs saved, not the one that failed
    rec = load(run)
    assert rec.status == "failed" and rec.reason.startswith("WriteFailed") and rec.epochs_done == epoch
    train_cli(run, *LONG)  # space again: it resumes
    assert load(run).status == "completed"


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    d = tmp_path_factory.mktemp("done") / "run"
    train_cli(d, "step=micro/gelu")
    return d


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.xdist_group("completed")  # the completed run made once (pytest -n, --dist loadgroup)
@pytest.mark.parametrize("damage", ["truncated", "missing", "stale", "not_json", "a_list"])
def test_a_record_that_disagrees_with_the_checkpoint_is_rebuilt_from_it(tmp_path, completed, damage):
    run = _copy(completed, tmp_path / "run")
    good = load(run)
    path = run / "metrics.json"
    if damage == "truncated":
        path.write_text(path.read_text()[:150])
    elif damage == "missing":
        path.unlink()
    elif damage == "stale":  # killed between the last checkpoint and the last record write
        stale = dict(good.to_dict(), status="running", history=good.to_dict()["history"][:1], final_top1=-1.0,
                     epochs_done=1)
        path.write_text(json.dumps(stale))
    elif damage == "not_json":
        path.write_bytes(b"\x00\xff garbage")
    else:
        path.write_text("[1, 2]")
    proc = train_cli(run, "step=micro/gelu")
    assert "rebuilt from the checkpoint" in proc.stderr and "already completed" in proc.stderr
    rebuilt = load(run)
    assert rebuilt.status == "completed" and all(getattr(rebuilt, k) is not None for k in SUMMARY)
    assert {k: getattr(rebuilt, k) for k in SUMMARY} == {k: getattr(good, k) for k in SUMMARY}
    assert rebuilt.history == good.history


def test_a_corrupt_checkpoint_in_a_completed_run_is_refused_and_the_record_stays_completed(tmp_path, completed):
    run = _copy(completed, tmp_path / "run")
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    before = (run / "metrics.json").read_bytes()
    proc = train_cli(run, "step=micro/gelu", check=False)
    assert proc.returncode == 1 and f"checkpoint {run / 'checkpoint.pt'} cannot be read" in proc.stderr
    assert (run / "metrics.json").read_bytes() == before and load(run).status == "completed"
    assert (run / "checkpoint.pt").read_bytes() == b"not a checkpoint"


def test_a_second_process_on_a_run_in_use_stops_at_once_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    slow = [*LONG, "budget.max_train_iters=500"]  # still training while the second process tries
    proc = start_cli(run, *slow)
    try:
        wait_for_epochs(run, 0, proc)  # training started
        holder = json.loads((run / ".lock").read_text())
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "checkpoint.pt"}
        t0 = time.time()
        second = train_cli(run, *slow, check=False)
        assert second.returncode == 1 and time.time() - t0 < 60
        assert f"is in use by pid {proc.pid} on {holder['host']} (since {holder['since']})" in second.stderr
        assert holder["pid"] == proc.pid
        after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "checkpoint.pt"}
        assert after.keys() == before.keys() and after[".lock"] == before[".lock"]
        assert after["config.yaml"] == before["config.yaml"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the holder died with SIGKILL: its lock went with it, and a rerun takes the directory
    again = start_cli(run, *slow)
    try:
        deadline = time.time() + 120
        while json.loads((run / ".lock").read_text() or "{}").get("pid") != again.pid:
            assert again.poll() is None and time.time() < deadline, "the rerun did not take the lock"
            time.sleep(0.1)
    finally:
        again.send_signal(signal.SIGKILL)
        again.wait()


def test_deterministic_turns_on_deterministic_algorithms(tmp_path):
    probe = ("from roadmap.train.distributed import setup; from roadmap.schema import SystemConfig; import torch; "
             "setup(SystemConfig(device='cpu', deterministic={})); print(torch.are_deterministic_algorithms_enabled())")
    for flag in (True, False):
        proc = run_cli("-c", probe.format(flag), check=True)
        assert proc.stdout.strip() == str(flag)


class SilentServer:
    """Accepts TCP connections on localhost and never answers: a W&B server that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port, self.stop, self.conns = self.sock.getsockname()[1], False, []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("server", ["unreachable", "silent"])
def test_wandb_online_with_a_wrong_key_falls_back_offline_without_waiting_for_wandbs_90_s(tmp_path, server):
    """Online tries for at most PROBE_S + INIT_TIMEOUT_S (11 s), then starts offline: about 20 s in all on a quiet
    machine. The bound asserted is 45 s, far below wandb.init's own 90 s that a regression would wait, and far
    enough above 20 s that a loaded machine (a sweep beside the tests) does not decide the verdict."""
    silent = SilentServer() if server == "silent" else None
    url = f"http://127.0.0.1:{silent.port}" if silent else "https://api.wandb.invalid"
    env = clean_env(HOME=str(tmp_path / "home"), WANDB_API_KEY="x" * 40, WANDB_BASE_URL=url)
    probe = ("import logging, time, sys; logging.basicConfig(level=logging.INFO); from pathlib import Path; "
             "from roadmap.train.tracking import Tracker; from roadmap.schema import WandbConfig; from roadmap.enums import WandbMode; "
             "t = time.time(); "
             "a = Tracker(WandbConfig(mode=WandbMode.online), Path(sys.argv[1]), 'a', None, {}, None); "
             "first = time.time() - t; t = time.time(); "
             "b = Tracker(WandbConfig(mode=WandbMode.online), Path(sys.argv[2]), 'b', None, {}, None); "
             "print('RESULT', first, time.time() - t, a.run.settings.mode, b.run.settings.mode); a.finish(); b.finish()")
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        proc = run_cli("-c", probe, tmp_path / "a", tmp_path / "b", env=env, timeout=120, check=True)
    finally:
        if silent:
            silent.close()
    result = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    first, second, mode_a, mode_b = result.split()[1:]
    assert (mode_a, mode_b) == ("offline", "offline")
    assert float(first) < 45, proc.stderr[-2000:]
    assert float(second) < float(first) or float(second) < 8  # tried once per process: no second wait


