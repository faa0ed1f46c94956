"""The architecture, checked so that it stays as drawn: imports go one way (down), no module imports itself in a
circle, and no private name of Hydra or timm is used. Read with Python's ast, so nothing here runs the code."""
import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, clean_env

SRC = ROOT / "src" / "roadmap"
# what each part of the package may import from the package (besides itself); `a.b` allows one module of `a`
ALLOWED = {
    "errors": set(),
    "enums": set(),
    "checks": set(),
    "schedule": {"enums"},
    "regime": {"checks"},
    "schema": {"errors", "enums", "checks", "schedule", "regime"},
    "files": {"errors"},
    "record": {"files", "errors"},
    "model": {"schema", "enums", "errors"},
    "data": {"schema", "enums", "errors", "files"},  # files: the automatic pipeline choice kept atomically
    "config": {"schema", "regime", "schedule", "checks", "errors", "model"},
    "train": {"schema", "schedule", "enums", "errors", "files", "record", "model", "data", "config"},
    # the charts read records and the steps, and may ask the lock whether a run's process is alive and start a W&B
    # run for a chart; never the model, the data or the training loop
    "analysis": {"schema", "enums", "errors", "files", "record", "config", "train.lock", "train.tracking"},
    # train.lifecycle: a sweep refuses before its first job what every job would be refused for (can_start)
    "sweep": {"schema", "errors", "record", "config", "train.lock", "train.lifecycle", "sweep_plan"},
    "sweep_plan": {"record", "config"},  # a sweep's estimate before its first job, from the records in its folder
    "__init__": {"config", "model", "schema", "record"},  # lazily, by name
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every roadmap module `path` imports, at the top or inside a function, as an absolute name."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("roadmap"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names
                        if (SRC.parent / f"{target}.{a.name}".replace(".", "/")).with_suffix(".py").exists()}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("roadmap")}
    return out - {here}


def unit(module: str) -> str:
    """The part of the package a module belongs to: its top-level module or package under roadmap."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_imports_go_one_way_down_the_layers():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = unit(module_name(path)) if path != SRC / "__init__.py" else "__init__"
        for target in imports(path):
            them = unit(target)
            if them == me or target == "roadmap":
                continue
            allowed = ALLOWED[me]
            if them not in allowed and ".".join(target.split(".")[1:3]) not in allowed:
                bad.append(f"{module_name(path)} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_module_imports_itself_in_a_circle():
    graph = {module_name(p): {t for t in imports(p) if (SRC.parent / t.replace(".", "/")).with_suffix(".py").exists()}
             for p in SRC.rglob("*.py") if p.name != "__init__.py"}
    state: dict[str, int] = {}

    def visit(m, trail):
        if state.get(m) == 1:
            raise AssertionError(" -> ".join(trail[trail.index(m):] + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for t in graph.get(m, ()):
            visit(t, trail + [m])
        state[m] = 2

    for m in graph:
        visit(m, [])


def test_no_private_names_of_hydra_or_timm():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("hydra", "timm")):
                private = [node.module] if "._" in node.module else []
                private += [a.name for a in node.names if a.name.startswith("_")]
                found += [f"{module_name(path)}: {p}" for p in private]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in ("job_return", "hydra", "timm"):
                    found.append(f"{module_name(path)}: {node.value.id}.{node.attr}")
    assert not found, found


def test_the_model_and_the_data_load_without_hydra():
    code = ("import sys; from roadmap.train.collector import off_while_loading; off_while_loading(); "  # as run.py loads
            "import roadmap.model, roadmap.data.pipelines, roadmap.schema, roadmap.record; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')))")
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# a repository path in prose (tests/..., src/..., scripts/..., configs/..., docs/... with a file's extension), and a
# dotted name of the package (roadmap.data.pipelines.workers_rate)
PATH_IN_TEXT = re.compile(r"(?<![\w/.\-])((?:tests|src|scripts|configs|docs)/[\w./\-]+\.(?:py|yaml|md|csv|json|png|svg|npz))")
NAME_IN_TEXT = re.compile(r"(?<![\w.])(roadmap(?:\.\w+)+)")
FILE_SUFFIXES = {"py", "md", "csv", "png", "svg", "yaml", "json", "npz"}


def _resolves(name: str) -> bool:
    import importlib
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_file_and_package_name_that_comments_and_docs_cite_exists():
    texts = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *SRC.rglob("*.py"), *(ROOT / "scripts").glob("*.py"),
             *(ROOT / "tests").glob("*.py"), *(ROOT / "configs").rglob("*.yaml")]
    missing = []
    for path in texts:
        text = path.read_text()
        missing += [f"{path.relative_to(ROOT)}: {m}" for m in PATH_IN_TEXT.findall(text) if not (ROOT / m).exists()]
        missing += [f"{path.relative_to(ROOT)}: {m}" for m in NAME_IN_TEXT.findall(text)
                    if m.rsplit(".", 1)[-1] not in FILE_SUFFIXES and not _resolves(m)]
    assert not missing, missing


def test_at_most_one_line_in_twenty_is_longer_than_100_characters():
    """In src/ and scripts/ (ruff stops any line over 120): the anchors, timm and the official ConvNeXt code,
    have 3 to 6 %."""
    for folder in (SRC, ROOT / "scripts"):
        lines = [ln for p in sorted(folder.rglob("*.py")) for ln in p.read_text().splitlines()]
        share = sum(len(ln) > 100 for ln in lines) / len(lines)
        assert share <= 0.05, f"{folder}: {share:.1%} of {len(lines)} lines are longer than 100 characters"


def test_one_epoch_reads_on_a_screen_no_function_in_train_is_longer_than_40_lines():
    for path in sorted((SRC / "train").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 40, f"{path.name}: {node.name} has {length} lines"


def test_the_schema_stays_at_most_300_lines():
    assert len((SRC / "schema.py").read_text().splitlines()) <= 300
