"""The committed results are what their records say: every chart table under docs/results/ is remade from the
run records committed beside it, byte for byte, so the README's figures cannot drift from the records."""
from pathlib import Path

import pytest

from roadmap.report import records_from_dirs, report

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
STUDIES = sorted(p.parent for p in RESULTS.glob("*/roadmap.csv"))


def test_there_are_committed_results():
    assert STUDIES, f"no study with a roadmap.csv under {RESULTS}"


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_plot_roadmap_on_the_committed_records_reproduces_the_committed_tables(study, tmp_path):
    records = records_from_dirs([study / "runs"])
    assert records and all(r["status"] == "completed" for r in records)  # only completed runs are committed
    report(records, tmp_path)
    for name in ("roadmap.csv", "roadmap_agreement.csv"):
        assert (tmp_path / name).read_text() == (study / name).read_text(), name
