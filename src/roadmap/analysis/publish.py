"""A chart as a W&B run of job_type `chart` in its sweep's group: the image, the table and a bar
chart of it."""
from __future__ import annotations

from pathlib import Path

from ..enums import WandbMode
from ..schema import WandbConfig
from ..train.tracking import Tracker
from .roadmap import COLUMNS
from .rows import Row


def log_to_wandb(rows: list[Row], agree: dict, out: Path, group: str, project: str = "roadmap",
                 entity: str | None = None, mode: str = "auto", chart: str = "roadmap",
                 columns: list[str] = COLUMNS) -> str | None:
    """One W&B run of job_type `chart` in the sweep's group: the chart image (`<chart>.png`), the
    table of its rows and a bar chart of it, and the agreement figures (if any) in its summary.
    Offline without an API key. Returns the run's directory."""
    import wandb

    columns = [c for c in columns if c != "adopted"] + (["adopted"] if "adopted" in columns else [])
    table = wandb.Table(columns=columns, data=[[getattr(r, c) for c in columns] for r in rows])
    cfg = WandbConfig(mode=WandbMode(mode), project=project, entity=entity)
    tracker = Tracker(cfg, out, f"chart/{group}", group, {"steps": len(rows), "group": group, "chart": chart}, None,
                      job_type="chart", tags=("chart", *(["leave_one_out"] * (chart == "leave_one_out"))))
    if tracker.run is None:
        return None
    tracker.log({f"{chart}/chart": wandb.Image(str(out / f"{chart}.png")), f"{chart}/table": table,
                 f"{chart}/top1": wandb.plot.bar(table, "label", "mean", title="top-1 per step" if chart == "roadmap"
                                                 else "top-1 with each step undone")}, step=0)
    if agree:
        tracker.summary({f"agreement/{k}": v for k, v in agree.items()})
    where = tracker.run.dir
    tracker.finish()
    return where
