"""A signal that lands while a file is written: the file is whole or as it was, no temporary file is left, and the
run ends as interrupted (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), never as a failed write."""
import json
import os
import signal
import sys

import pytest
import torch
from conftest import FAST, ROOT, clean_env, last_wins

from roadmap.errors import Interrupted
from roadmap.files import atomic_write, temporary
from roadmap.train.checkpoint import load_checkpoint
from roadmap.train.signals import held, interruptible


@pytest.fixture(autouse=True)
def default_handlers():
    """SIGINT, SIGTERM and SIGHUP as a fresh run.py process has them (interruptible() keeps a handler another
    library installed): a test earlier in the same pytest worker may have left its own."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


class SignallingFile:
    """A file whose first write sends this process a signal: as if it came while torch.save was writing."""

    def __init__(self, f, signum):
        self.f, self.signum, self.sent = f, signum, False

    def write(self, data):
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_held_checkpoint_write_waits_until_the_file_is_whole(tmp_path, signum):
    path = tmp_path / "checkpoint.pt"
    state = {"model": {"w": torch.arange(1000.0)}, "epoch": 3}
    with interruptible(), pytest.raises(Interrupted) as raised:
        with held():
            atomic_write(path, lambda f: torch.save(state, SignallingFile(f, signum)))
    assert raised.value.signum == signum
    assert torch.equal(torch.load(path, weights_only=False)["model"]["w"], state["model"]["w"])
    assert not temporary(path).exists()


def test_a_second_signal_while_held_still_waits(tmp_path):
    path = tmp_path / "checkpoint.pt"

    def write(f):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        torch.save({"x": torch.ones(3)}, f)

    with interruptible(), pytest.raises(Interrupted) as raised:
        with held():
            atomic_write(path, write)
    assert raised.value.signal_name == "SIGINT"  # the first is reported
    assert torch.equal(torch.load(path, weights_only=False)["x"], torch.ones(3))


def test_an_interrupted_write_leaves_no_temporary_file_and_the_old_file_as_it_was(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"old": 1}')

    def write(f):
        f.write(b'{"new"')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # goes on as it was: not a failed write
        atomic_write(path, write)
    assert path.read_text() == '{"old": 1}' and not temporary(path).exists()


# run.py with its checkpoint writer sending the signal once the first epoch is being saved
INJECT = """
import os, runpy, signal, sys
import roadmap.train.lifecycle as lifecycle
from roadmap.train import checkpoint
write = checkpoint.save_checkpoint
def signalling(state, path):
    if state["epoch"] == 1:
        os.kill(os.getpid(), signal.{name})
    write(state, path)
lifecycle.save_checkpoint = signalling
sys.argv = ["run.py", *sys.argv[1:]]
runpy.run_path({run!r}, run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_inside_the_checkpoint_write_ends_the_run_interrupted_with_the_epoch_saved(tmp_path, name, code):
    import subprocess
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-c", INJECT.format(name=name, run=str(ROOT / "run.py")),
           *last_wins([*FAST, "budget.epochs=3", f"hydra.run.dir={run_dir}"])]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and f"interrupted by {name}" in proc.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == name and record["epochs_done"] == 1
    assert load_checkpoint(run_dir / "checkpoint.pt")["epoch"] == 1
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


# as INJECT, and a second SIGTERM while the run records how it ended: what a sweep's launcher does when it forwards
# the signal its job already got from the terminal or the scheduler (both reach the job, one after the other)
INJECT_SECOND = INJECT.replace("lifecycle.save_checkpoint = signalling", """lifecycle.save_checkpoint = signalling
ending = lifecycle.record_ending
def ending_signalled(record, e, ckpt):
    os.kill(os.getpid(), signal.SIGTERM)
    return ending(record, e, ckpt)
lifecycle.record_ending = ending_signalled""")


@pytest.mark.slow
def test_a_second_signal_while_the_run_records_its_end_does_not_cut_the_record_short(tmp_path):
    import subprocess
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-c", INJECT_SECOND.format(name="SIGTERM", run=str(ROOT / "run.py")),
           *last_wins([*FAST, "budget.epochs=3", f"hydra.run.dir={run_dir}"])]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "interrupted by SIGTERM" in proc.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_done"] == 1
