"""Train and evaluate one roadmap step:  python run.py step=micro/gelu [data=cifar100] [seed=1] [key=value ...]

Hydra app over configs/; `python run.py --help` lists the groups, `--cfg job` prints the composed config.
Exit status: 0 completed, 1 failed or refused (one line says why), 128 + N after signal N (130 Ctrl-C, 143 SIGTERM,
129 SIGHUP: the terminal closed).
"""
import os
import signal
import sys

from roadmap.errors import STOP_SIGNALS, heard_stop_signals
from roadmap.train.collector import off_while_loading, on_past_what_has_loaded

off_while_loading()  # until what a run needs has loaded (src/roadmap/train/collector.py)

STOPPED = "interrupted before the run started; nothing was written"
HANDLERS = {s: signal.getsignal(s) for s in STOP_SIGNALS}  # as the process started: one ignored (nohup) stays so
HANDLED = heard_stop_signals()


def _stopped_while_loading(signum, frame):
    """Ctrl-C (or SIGTERM, SIGHUP) while torch, timm and Hydra load: one line, nothing written. An exception raised
    inside an extension module's import would surface as another error with a traceback, so the process ends here."""
    _say_stopped()
    os._exit(128 + signum)


def _say_stopped():
    try:
        print(STOPPED, file=sys.stderr, flush=True)
    except OSError:  # the terminal has gone (SIGHUP)
        pass


for _signal in HANDLED:
    signal.signal(_signal, _stopped_while_loading)

import logging  # after the handlers above, so that a Ctrl-C while importing is one line
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from roadmap.config.completion import QUERY_FLAGS, nested_completions
from roadmap.config.store import register
from roadmap.errors import ConfigMismatch, CorruptCheckpoint, Interrupted, RoadmapError, RunLocked

# torch, timm and W&B load in main() and below (the modules below), not here: a completion query (Tab) needs none
log = logging.getLogger("roadmap")
CHECKED = {}  # a single run's config, composed and checked before Hydra starts (preflight)


@hydra.main(config_path="configs", config_name="config", version_base=None)
def main(dcfg: DictConfig) -> dict:
    """Returns the job's outcome ({"status", "reason", "final_top1"}), which a sweep's summary counts. Jobs side by
    side (a sweep's, on one machine) name themselves in every line they log."""
    from roadmap.sweep import jobs_side_by_side
    from roadmap.train.progress import named_job
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    side_by_side = jobs_side_by_side(hc.launcher) if multirun else 1
    name = f"job {hc.job.num + 1} ({dcfg.step.name} seed {dcfg.seed})" if side_by_side > 1 else None
    with named_job(name):
        return run_job(dcfg, hc, multirun, side_by_side)


def run_job(dcfg: DictConfig, hc, multirun: bool, side_by_side: int) -> dict:
    off_while_loading()  # a joblib worker's first job loads torch and timm here
    from roadmap.config.compose import to_run_config
    from roadmap.sweep import SweepSummary
    from roadmap.train.lifecycle import train
    on_past_what_has_loaded()
    try:
        cfg = CHECKED.get("run") if not multirun else None
        cfg = cfg or to_run_config(dcfg)  # a sweep's jobs are checked as each starts
        group = cfg.wandb.group or (Path(hc.sweep.dir).name if multirun else None)
        record = train(cfg, Path(hc.runtime.output_dir), group, list(hc.overrides.task), side_by_side)
        return {"status": record.status, "reason": None, "final_top1": record.final_top1}
    except Interrupted as e:
        log.error("%s", e)
        if multirun:  # a sweep stops too (Ctrl-C means stop), and says how far it got
            SweepSummary.print_active(f"stopped by {e.signal_name}")
        if e.cause:  # a joblib worker whose sweep was killed: no one waits for its result, nor would end it
            logging.shutdown()
            os._exit(e.exit_code)
        sys.exit(e.exit_code)
    except (ConfigMismatch, CorruptCheckpoint, RunLocked) as e:
        error, status = e, "refused"  # the directory is another run's, unreadable or in use: nothing was touched
    except (RoadmapError, ValueError) as e:
        error, status = e, "failed"
    except Exception as e:
        if not multirun:
            raise
        log.exception("run failed; the sweep goes on")  # e.g. out of memory
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    log.error("%s", error)
    if not multirun:
        sys.exit(1)
    return {"status": status, "reason": f"{type(error).__name__}: {error}"}


def runs_the_job(argv: list[str]) -> bool:
    """False for what Hydra answers without running the job (--help, --hydra-help, --cfg, --info,
    --version): those need neither torch nor timm."""
    from roadmap.config.command_line import printed_config
    return printed_config(argv) is None and not any(
        a in ("--help", "-h", "--hydra-help", "--info", "-i", "--version") for a in argv)


class StoppedBeforeRun(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop_before_run(signum, frame):
    raise StoppedBeforeRun(signum)


if __name__ == "__main__":
    register()
    if any(a in QUERY_FLAGS for a in sys.argv[1:]):  # for the shell (or `| head`): quiet once its reader has gone
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    answer = nested_completions(sys.argv[1:])  # tab completion of `step=<TAB>`: Hydra lists one folder only
    if answer is not None:
        print(answer)
        sys.exit(0)
    if any(a in QUERY_FLAGS for a in sys.argv[1:]):  # another completion query (or the script's install): Hydra's
        main()
        sys.exit(0)
    # after the completions (a TAB answers without Hydra's parser and compose)
    from roadmap.config.command_line import check_command_line, compose_single, prepare_single, printed_config
    if printed_config(sys.argv[1:]) in ("job", "all") and "--resolve" not in sys.argv:
        sys.argv.append("--resolve")  # the config printed as it runs: schedule.* (what runs) as values
    try:
        # the command line and the typed config, which refuse a mistyped command before torch and timm load
        check_command_line(sys.argv[1:])
        single = compose_single(sys.argv[1:])
        if runs_the_job(sys.argv[1:]):  # torch, timm and W&B load here, where a signal still ends it in one line
            from roadmap.train.lifecycle import can_start
        else:  # --help, --cfg: output read by another program (`| head`) ends it quietly once the reader has gone
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        for _signal in HANDLED:  # loaded: from here a signal unwinds what is being checked
            signal.signal(_signal, _stop_before_run)
        if single is not None:
            CHECKED["run"] = prepare_single(*single, checks=(can_start,))
        on_past_what_has_loaded()
        for _signal, _handler in HANDLERS.items():  # from here the run handles its signals
            signal.signal(_signal, _handler)
        try:
            main()
        except SystemExit as e:  # a sweep that an error ended early (a job's process killed): its line after it
            if e.code not in (0, None):
                from roadmap.sweep import SweepSummary
                SweepSummary.print_active("stopped by the error above")
            raise
    except ValueError as e:
        sys.exit(f"error: {e}")
    except (KeyboardInterrupt, StoppedBeforeRun) as e:  # before a run started (composing the config): nothing to record
        _say_stopped()
        sys.exit(128 + getattr(e, "signum", signal.SIGINT))
