"""A census of the Python processes a test run starts: with this folder on PYTHONPATH and CENSUS_LOG set, every
Python process appends one JSON line at exit (its argv, wall and CPU seconds, whether it loaded torch and timm,
and the test that started it). Processes that end by a signal or os._exit write nothing.

    CENSUS_LOG=/tmp/census.jsonl PYTHONPATH=.ci/census python -m pytest -q -n auto
    python3 .ci/census/summary.py /tmp/census.jsonl
"""
import atexit
import json
import os
import resource
import sys
import time

_START = time.time()


def _write() -> None:
    try:
        own = resource.getrusage(resource.RUSAGE_SELF)
        row = {"argv": sys.argv[:12], "wall": round(time.time() - _START, 2),
               "cpu": round(own.ru_utime + own.ru_stime, 2), "torch": "torch" in sys.modules,
               "timm": "timm" in sys.modules, "test": os.environ.get("PYTEST_CURRENT_TEST", "")}
        with open(os.environ["CENSUS_LOG"], "a") as f:
            f.write(json.dumps(row) + "\n")
    except Exception:  # a census never breaks what it counts
        pass


if os.environ.get("CENSUS_LOG"):
    atexit.register(_write)
