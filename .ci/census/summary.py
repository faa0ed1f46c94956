"""Sums a census (sitecustomize.py): processes and CPU seconds by program and by whether torch was loaded, then
by test file. Usage: python3 .ci/census/summary.py CENSUS.jsonl"""
import collections
import json
import sys
from pathlib import Path

rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
by_kind, by_file = collections.defaultdict(list), collections.defaultdict(list)
for row in rows:
    program = Path(row["argv"][0]).name if row["argv"] else "?"
    by_kind[(program, "torch" if row["torch"] else "light")].append(row["cpu"])
    if row["test"]:
        by_file[row["test"].split("::")[0]].append(row["cpu"])
cpu_s, loaded = sum(r["cpu"] for r in rows), sum(r["torch"] for r in rows)
print(f"{len(rows)} processes, {cpu_s:.0f} s of CPU; {loaded} loaded torch")
for (program, kind), cpu in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
    print(f"  {program:32s} {kind:5s} {len(cpu):4d} processes {sum(cpu):7.0f} s")
print("started by tests, by file:")
for name, cpu in sorted(by_file.items(), key=lambda kv: -sum(kv[1])):
    print(f"  {name:40s} {len(cpu):4d} processes {sum(cpu):7.0f} s")
