"""Training: a run's life in its directory (lifecycle.py: lock, resume, record, checkpoint, how it
ended), the trainer built from the config (trainer.py, recipe.py), the loop (loop.py) and what
watches it (meter.py, progress.py), W&B (tracking.py), and the runtime (distributed.py, lock.py,
signals.py, collector.py)."""
