"""A run.py started warm (tests/warm.py: a fork of a server that has imported torch, timm and Hydra) is the process a
fresh `python run.py` is, as far as the tests look: the same numbers, output, exit codes, signal dispositions,
session, and record after a signal; and what may differ at import time starts fresh."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import warm
from conftest import FAST, ROOT, clean_env, load, run_cli, start_cli, wait_for_epochs


def masks(pid: int) -> dict:
    """The signals a process blocks, ignores and catches (/proc/PID/status)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v for k, v in (line.split(":\t", 1) for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))}


@pytest.mark.slow
def test_a_warm_run_gives_the_numbers_output_and_exit_code_of_a_fresh_one(tmp_path):
    args = [ROOT / "run.py", *FAST, "step=micro/gelu", "budget.epochs=2", "data.pipeline=workers"]  # nothing kept
    runs = {kind: run_cli(*args, f"hydra.run.dir={tmp_path / kind}", fresh=kind == "fresh", check=True)
            for kind in ("fresh", "warm")}
    fresh, warm_ = (load(tmp_path / kind) for kind in ("fresh", "warm"))
    assert fresh.status == warm_.status == "completed"
    assert [(h.train_loss, h.val_loss, h.val_top1) for h in warm_.history] == \
        [(h.train_loss, h.val_loss, h.val_top1) for h in fresh.history]
    strip = lambda text: [line.split("] ", 1)[-1].replace(str(tmp_path / "warm"), "DIR")  # noqa: E731
                          for line in text.splitlines() if not re.search(r"images/s|it/s|s/it| of training", line)]
    assert strip(runs["warm"].stderr) == [line.replace(str(tmp_path / "fresh"), "DIR")
                                          for line in strip(runs["fresh"].stderr)]
    refused = {kind: run_cli(ROOT / "run.py", "step=micro/gelu", "model.kernel_size=4", fresh=kind == "fresh")
               for kind in ("fresh", "warm")}
    assert refused["warm"].returncode == refused["fresh"].returncode == 1
    assert refused["warm"].stderr == refused["fresh"].stderr and "model.kernel_size" in refused["warm"].stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, nohup", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_warm_run_has_a_fresh_runs_signals_session_and_record_after_a_signal(tmp_path, sig, code, nohup):
    """Started by a test process that ignores SIGHUP (as under nohup) or not: the server, started before, did not."""
    warm.server(clean_env())
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)
    try:
        procs = {kind: start_cli(tmp_path / kind, "step=micro/gelu", "budget.epochs=50", fresh=kind == "fresh",
                                 start_new_session=True) for kind in ("fresh", "warm")}
    finally:
        signal.signal(signal.SIGHUP, before)
    assert isinstance(procs["warm"], warm.WarmProcess) and isinstance(procs["fresh"], subprocess.Popen)
    for kind, proc in procs.items():
        wait_for_epochs(tmp_path / kind, 1, proc)
    assert masks(procs["warm"].pid) == masks(procs["fresh"].pid)
    assert os.getsid(procs["warm"].pid) == procs["warm"].pid and os.getpgid(procs["warm"].pid) == procs["warm"].pid
    for proc in procs.values():
        os.killpg(proc.pid, sig)
    assert [proc.wait(timeout=60) for proc in procs.values()] == [code, code]
    records = {kind: load(tmp_path / kind) for kind in procs}
    assert records["warm"].status == records["fresh"].status == "interrupted"
    assert records["warm"].reason == records["fresh"].reason


def test_a_run_whose_modules_would_load_under_another_environment_starts_fresh():
    cmd, base = [sys.executable, str(ROOT / "run.py"), "step=micro/gelu"], clean_env()
    assert warm.usable(cmd, clean_env(WANDB_MODE="offline", HOME="/tmp"), base)  # read while it runs
    assert not warm.usable(cmd, {**base, "OMP_NUM_THREADS": "2"}, base)  # read as torch loads
    assert not warm.usable(cmd, {**base, "HF_HUB_OFFLINE": "0"}, base)
    assert not warm.usable([sys.executable, "-m", "torch.distributed.run", str(ROOT / "run.py")], base, base)
    assert not warm.usable([sys.executable, str(ROOT / "scripts/status.py")], base, base)
