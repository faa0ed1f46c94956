"""Analysis of runs that are done: reading their records (read.py), the roadmap chart (roadmap.py)
and the leave-one-out chart (leave_one_out.py) with their shared row statistics (rows.py, stats.py),
the figure (chart.py), and a chart as a W&B run (publish.py). Never imports the model, the data or
the training loop."""
