"""Train and evaluate one roadmap step:  python run.py step=micro/gelu [data=cifar100] [seed=1] [key=value ...]

Hydra app over configs/; `python run.py --help` lists the groups, `--cfg job` prints the composed config.
"""
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from roadmap.compose import check_choices, to_run_config
from roadmap.errors import RoadmapError
from roadmap.sweep import register_resolvers
from roadmap.train import train

log = logging.getLogger("roadmap")


@hydra.main(config_path="configs", config_name="config", version_base=None)
def main(dcfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        cfg = to_run_config(dcfg)
        group = cfg.wandb.group or (Path(hc.sweep.dir).name if multirun else None)
        record = train(cfg, Path(hc.runtime.output_dir), group)
    except (RoadmapError, ValueError) as e:
        log.error("%s", e)
        if not multirun:
            sys.exit(1)
        return None  # recorded as failed in its metrics.json; the sweep goes on and SweepSummary reports it
    except Exception:
        if not multirun:
            raise
        log.exception("run failed; the sweep goes on")  # e.g. out of memory
        return None
    return record.get("final_top1")


if __name__ == "__main__":
    register_resolvers()
    try:
        check_choices(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"error: {e}")
    main()
