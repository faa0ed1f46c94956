import atexit
import compileall
import copy
import functools
import gc
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roadmap.train.collector import off_while_loading, on_past_what_has_loaded

off_while_loading()  # while torch, timm and Hydra load, as run.py does (src/roadmap/train/collector.py)

import pytest
import warm

from roadmap import roadmap_steps
from roadmap.config.compose import compose_dict, to_run_config
from roadmap.config.steps import file_fields
from roadmap.record import RunRecord

ROOT = Path(__file__).resolve().parents[1]

# runs and sweeps of the tests, and data.pipeline=auto's kept choices, go to a folder of their own (configs/paths/),
# never to the checkout's outputs/, whose choices, kept from a user's runs, would change what a test measures;
# subprocesses inherit it (clean_env). Tests that need the automatic choice measured set paths.output_dir.
# Removed when the process that made it ends: a whole suite's runs hold several GB (each pytest -n process makes its own).
# A process killed before its exit (SIGKILL, a CI timeout's SIGTERM) leaves its folder: the next suite on this host
# removes those whose process (`<pid>.<host>` in the name: a container sharing /tmp has other processes) is gone.
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def remove_the_folders_of_ended_test_processes(prefix: str = "roadmap-tests-") -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*.{HOST}-*"):
        pid = folder.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's process, alive
            pass


remove_the_folders_of_ended_test_processes()
os.environ["ROADMAP_OUTPUT_DIR"] = tempfile.mkdtemp(prefix=f"roadmap-tests-{os.getpid()}.{HOST}-")
atexit.register(shutil.rmtree, os.environ["ROADMAP_OUTPUT_DIR"], ignore_errors=True)

# the tests' runs hear the stop signals whatever started the suite: a background job of a script (`pytest ... &`
# without job control) starts with SIGINT ignored, `nohup pytest` with SIGHUP ignored, and a child keeps an ignored
# signal ignored (run.py keeps it so, as it should); a handled one is reset to its default in the child
# (the run under nohup is tested with nohup itself)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, signal.default_int_handler if _sig == signal.SIGINT else signal.SIG_DFL)

# the leave-one-out study's full model, and the adopted steps that set fields of their own (the steps it undoes),
# read here from the step files independently of config/undo.py
FULL = "micro/separate_downsample"
CHAIN = [s.name for s in roadmap_steps() if s.meta.adopted and s.meta.order > 0
         and {k for k in file_fields(s.path) if not k.startswith("step.")}]

# a real run, made small: a few iterations of a one-block-per-stage network a quarter as wide (base width 16: a 2 MB
# checkpoint instead of 60 MB) on the shipped dataset
FAST = ["budget=smoke", "budget.max_train_iters=3", "budget.max_eval_iters=2", "data.num_workers=0",
        "train.batch_size=16", "model.depths=[1,1,1,1]", "model.base_width=16", "wandb=disabled"]


def clean_env(**extra) -> dict:
    """The environment of the tests' subprocesses (and of the warm server, tests/warm.py). OMP_WAIT_POLICY=PASSIVE:
    a run takes every core for its threads, as documented (system.threads=0), while the suite runs a test process
    on every core; OpenMP's threads, which by default spin between parallel regions, then spun against the other
    process's work: 17 % of the suite's CPU in libgomp's wait loop (`perf record -a` over `pytest -n auto`,
    2026-12-07). Passive threads sleep instead; what a run computes, and its threads, are as they were."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", **extra)
    return env


@functools.cache
def step_composed(step: str, regime: str = "r50"):
    """A step's composed config in a regime, as compose_dict gives it, composed once per test process for the tests of
    what the steps build and of how they differ (a composition is some 0.1 s, and several tests go through every
    step): shared, never to be changed (to_run_config leaves it as it was: tests/test_config.py)."""
    return compose_dict(step, [f"regime={regime}"])


@functools.cache
def _step_config(step: str, regime: str):
    return to_run_config(step_composed(step, regime))


def step_config(step: str, regime: str = "r50"):
    """A step's RunConfig in a regime, as load_config gives it (from step_composed); a copy each time, which a test
    may change."""
    return copy.deepcopy(_step_config(step, regime))


def last_wins(args) -> list[str]:
    """Command-line arguments with each `key=value` override kept once, the last given (run.py refuses a key given
    twice; tests build their commands from shared lists such as FAST and override some of it)."""
    args = [str(a) for a in args]
    key = lambda a: a.split("=", 1)[0].lstrip("+~") if "=" in a and not a.startswith("-") else None  # noqa: E731
    last = {key(a): i for i, a in enumerate(args) if key(a)}
    return [a for i, a in enumerate(args) if key(a) is None or last[key(a)] == i]


def warm_base(cmd: list, env: dict, fresh: bool, kw: dict, warm_takes: set = frozenset()) -> dict | None:
    """The warm server's environment when `cmd` may start warm (tests/warm.py: run.py, not `fresh`, no subprocess
    option beyond `warm_takes`, the server's environment as far as imports read it), else None."""
    base = clean_env()
    return base if not fresh and set(kw) <= warm_takes and warm.usable(cmd, env, base) else None


def run_cli(*args, cwd=ROOT, env=None, timeout=600, check=False, module=None, fresh=False,
            **kw) -> subprocess.CompletedProcess:
    """`python args...` to its end, its output captured; run.py starts warm (tests/warm.py) unless `fresh`."""
    cmd = [sys.executable, *(["-m", module] if module else []), *last_wins(args)]
    env = env or clean_env()
    base = warm_base(cmd, env, fresh, kw)
    if base is not None:
        proc = warm.run(cmd, cwd, env, base, timeout=timeout)
    else:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def run_script(script, *args, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    """`python script args` run in this process, as Python would run it (runpy, as __main__, with its argv, working
    directory and environment; the exit status and output returned as from subprocess.run), for the scripts whose
    start-up (importing torch, torchvision, timm: about 3.5 s here) costs more than their work. run.py stays a
    process: Hydra configures logging and signals for the whole process."""
    import contextlib
    import io
    import runpy
    import traceback

    import torch
    argv = [str(script), *map(str, args)]
    out, err, code = io.StringIO(), io.StringIO(), 0
    saved = sys.argv, os.getcwd(), dict(os.environ), torch.get_num_threads()
    try:
        sys.argv = argv
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env or clean_env())
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(argv[0], run_name="__main__")
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:  # sys.exit("error: ..."): the message on stderr and status 1, as Python does
                    print(e.code, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
        os.environ.clear()
        os.environ.update(saved[2])
        torch.set_num_threads(saved[3])  # a script's --threads stays in the script
    return subprocess.CompletedProcess([sys.executable, *argv], code, out.getvalue(), err.getvalue())


def train_cli(run_dir, *overrides, check=True, **kw) -> subprocess.CompletedProcess:
    return run_cli(ROOT / "run.py", *FAST, *overrides, f"hydra.run.dir={run_dir}", check=check, **kw)


def popen_cli(*args, env=None, fresh=False, **kw) -> subprocess.Popen:
    """`python args...` in the background from the checkout (subprocess.Popen's stdout, stderr, start_new_session;
    read as text); run.py starts warm (tests/warm.py) unless `fresh`."""
    cmd = [sys.executable, *last_wins(args)]
    env = env or clean_env()
    base = warm_base(cmd, env, fresh, kw, warm_takes={"stdout", "stderr", "start_new_session"})
    if base is not None:
        return warm.popen(cmd, ROOT, env, base, **kw)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, **kw)


def start_cli(run_dir, *overrides, env=None, fresh=False, **kw) -> subprocess.Popen:
    """A training run in the background (stdout and stderr to a file beside run_dir), warm (tests/warm.py) unless
    `fresh`."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    out = open(run_dir.parent / f"{run_dir.name}.log", "w")
    return popen_cli(ROOT / "run.py", *FAST, *overrides, f"hydra.run.dir={run_dir}", env=env, fresh=fresh,
                     stdout=out, stderr=subprocess.STDOUT, **kw)


def load(run_dir) -> RunRecord:
    return RunRecord.load(Path(run_dir) / "metrics.json")


def wait_for_epochs(run_dir, epochs: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the run's record has `epochs` epochs done (0: until its first epoch started, its config.yaml and
    overrides.yaml written and the trainer and W&B set up, which the record's `pipeline` marks); fails if it ended
    first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = RunRecord.read(Path(run_dir) / "metrics.json") or RunRecord(status="none")
        if rec.status == "running" and rec.epochs_done >= epochs and (epochs or rec.pipeline is not None):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before epoch {epochs} was done")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for epoch {epochs}")


def interrupt_after(run_dir, epochs: int, *overrides) -> RunRecord:
    """Starts a run with these overrides, stops it with SIGTERM (as SLURM's preemption does) once `epochs` epochs are
    done, and returns its record."""
    proc = start_cli(run_dir, *overrides)
    wait_for_epochs(run_dir, epochs, proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return load(run_dir)


def kill_inside(run_dir, overrides, epoch: int, delay: float, epochs: int, tries: int = 3) -> Path:
    """Starts a run with these overrides and kills it with SIGKILL `delay` seconds after `epoch` epochs are done;
    where the kill came too late (the run had done all its `epochs`, or had ended), tries again in a fresh
    directory with a quarter of the delay, since an epoch of a few iterations can be far shorter than the one the
    delay was measured on. Returns the run directory of the kill that landed inside the run."""
    run_dir, delays = Path(run_dir), [delay / 4**i for i in range(tries)]
    for i, wait in enumerate(delays):
        d = run_dir if i == 0 else run_dir.with_name(f"{run_dir.name}-try{i}")
        proc = start_cli(d, *overrides)
        wait_for_epochs(d, epoch, proc)
        time.sleep(wait)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL and load(d).epochs_done < epochs:
            return d
    raise AssertionError(f"{tries} runs all ended before they could be killed (epoch {epoch}, delays {delays} s)")


# what the whole suite writes under the temporary directory at its peak (its runs' checkpoints, records and W&B
# folders): 1.35 GB with pytest -n auto on 2 cores, 2026-12-07 (`df` sampled every 2 s); more cores run more of the
# documented pages side by side
MIN_FREE_GB = 2.0


def tmp_space_problem(folder: str, need: str) -> str | None:
    """One line saying why the suite should not start in `folder`, or None when it has `need` GB free."""
    try:
        need_gb = float(need)
    except ValueError:
        return f"ROADMAP_TESTS_MIN_FREE_GB={need!r} is not a number: give the GB the tests need free (0: no check)"
    free = shutil.disk_usage(folder).free / 1e9
    if free >= need_gb:
        return None
    return (f"the tests need {need_gb:g} GB free under {folder} (their runs' checkpoints and records; "
            f"ROADMAP_TESTS_MIN_FREE_GB) and it has {free:.2f} GB: free some space, point TMPDIR at a folder with "
            f"more, or set ROADMAP_TESTS_MIN_FREE_GB=0 to run them anyway")


def pytest_sessionstart(session):
    """Before any test, in the process that starts them: a full disk would fail every test that writes a run, each
    with a message of its own (the suite's CI once ended with 39 failures and 46 errors, /tmp at 136 MiB free)."""
    if hasattr(session.config, "workerinput"):
        return
    problem = tmp_space_problem(tempfile.gettempdir(), os.environ.get("ROADMAP_TESTS_MIN_FREE_GB", str(MIN_FREE_GB)))
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session):
    """What the test process has loaded by now (torch, timm, Hydra, the tests: some 450,000 objects) is frozen out of
    the collector (gc.freeze): each full collection would walk it all again (0.3 s each, some 25 in a fast tier's
    process: 13 % of its CPU); what the tests make is collected as before."""
    gc.freeze()


def pytest_configure(config):
    """The collector on again, past what has loaded (off while it loaded, above). The package compiled to bytecode
    once, before the test processes start (in pytest -n's main process): where PYTHONDONTWRITEBYTECODE is set (as on
    this project's machine) every Python process the suite starts (some 200) would compile it again, about 0.3 s
    each; Python reads the files whatever that setting. So too the test modules as pytest rewrites their asserts:
    written to tests/__pycache__ whatever that setting (pytest reads them whatever it, and rewriting them all again
    cost each test process 1 s of its start). torch loads here, in the processes that run tests: pytest -n's main
    process only hands them out, and starts them 1.5 s sooner without it."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        import torch
        # one thread per test process, as the subprocesses get (clean_env): the suite runs on every core at once
        # (pytest -n auto), and two processes with two OpenMP threads each on two cores spin against each other
        torch.set_num_threads(1)
    on_past_what_has_loaded()
    sys.dont_write_bytecode = False  # for pytest's rewritten test modules: this process's own imports are done
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(ROOT / "src", quiet=1)
