"""Every third-party import is declared in setup.py for the command that needs it.

A fresh machine gets only what setup.py declares; a package that happens to be installed on the
development machine hides a missing declaration (matplotlib did, until the README's test command
failed on a fresh machine). The checker reads the imports with `ast`, maps them to distributions
with importlib.metadata and compares them with setup.py, so a missing declaration fails here.
"""

from __future__ import annotations

import ast
import os
import re
import runpy
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Iterator
from unittest import mock

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
#: Calls that import the module named by their first (string) argument.
IMPORTING_CALLS = {"importorskip", "import_module", "__import__"}


def readme_command(label: str, readme: Path = REPO / "README.md") -> str:
    """The one command in the first fenced block after the README line that starts with `label`."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(label))
    opening = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    body = [line for line in lines[opening + 1:closing] if line.strip()]
    assert len(body) == 1, f"README.md: the block after {label!r} should hold one command, it holds {body}"
    return body[0]


def extras_installed_by(command: str) -> set[str]:
    """The extras that `pip install ... -e ".[a,b]"` installs (none for `-e .`)."""
    match = re.search(r"""-e\s+["']?\.\[([^\]]*)\]""", command)
    return {canonicalize_name(e) for e in match.group(1).split(",")} if match else set()


def declared(setup_py: Path) -> tuple[set[str], dict[str, set[str]]]:
    """install_requires and extras_require of setup.py, as PEP 503 names.

    setup.py runs with setuptools.setup replaced by a recorder (nothing is built or installed), so
    computed declarations (shared lists, unpacking) are read as pip would see them, which an
    `ast` reading of literals would not do.
    """
    recorded: dict = {}
    cwd = os.getcwd()
    os.chdir(setup_py.parent)  # setup.py reads README.md relative to its folder, as pip runs it
    try:
        with mock.patch.object(setuptools, "setup", lambda **kw: recorded.update(kw)):
            runpy.run_path(str(setup_py), run_name="__main__")
    finally:
        os.chdir(cwd)

    def names(requirements: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in requirements}

    extras = {canonicalize_name(k): names(v) for k, v in recorded.get("extras_require", {}).items()}
    return names(recorded.get("install_requires", [])), extras


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """(top-level module, line) of every absolute import in a file, including lazy imports in
    functions and `pytest.importorskip("x")`-style calls with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in IMPORTING_CALLS:
                yield node.args[0].value.split(".")[0], node.lineno


def sources(repo: Path) -> dict[str, list[Path]]:
    """Python files per part of the repository."""
    return {"mate_kd": sorted((repo / "mate_kd").rglob("*.py")),
            "scripts": sorted((repo / "scripts").glob("*.py")),
            "tests": sorted((repo / "tests").rglob("*.py")),
            "benchmarks": sorted((repo / "benchmarks").rglob("*.py"))}


def check(repo: Path = REPO) -> list[str]:
    """One message per third-party import that setup.py does not declare for the commands using it."""
    core, extras = declared(repo / "setup.py")
    test_extras = extras_installed_by(readme_command("Test it", repo / "README.md"))
    files = sources(repo)
    # The package and the modules that tests and benchmarks import from their own folders.
    local = {"mate_kd"} | {p.stem for part in files.values() for p in part} \
        | {p.parent.name for part in files.values() for p in part if p.name == "__init__.py"}
    test = (core.union(*(extras.get(e, set()) for e in test_extras)),
            f"the README's test command (it installs extras: {', '.join(sorted(test_extras)) or 'none'})")
    # part -> [(what the command installs, the command, where a missing one goes)]; the suite also runs
    # benchmarks/ (tests/test_bench_smoke.py), so the test command must install what benchmarks import.
    commands = {
        "mate_kd": [(core, "`pip install -e .`", "install_requires")],
        "scripts": [(core, "`pip install -e .`", "install_requires")],
        "tests": [(*test, "extras_require['test'] (or install_requires)")],
        "benchmarks": [(core | extras.get("bench", set()), "`pip install -e \".[bench]\"`",
                        "extras_require['bench'] (or install_requires)"),
                       (*test, "extras_require['test'] (tests/test_bench_smoke.py runs the benchmarks)")],
    }
    providers = packages_distributions()
    problems = []
    for part, paths in files.items():
        for path in paths:
            rel = path.relative_to(repo)
            first_line: dict[str, int] = {}
            for module, line in imported_modules(path):
                first_line[module] = min(line, first_line.get(module, line))
            for module, line in sorted(first_line.items()):
                if module in sys.stdlib_module_names or module in local:
                    continue
                dists = sorted({canonicalize_name(d) for d in providers.get(module, [])})
                if not dists:
                    problems.append(f"{rel}:{line} imports {module!r}, which no installed distribution provides: "
                                    f"install the distribution that provides it and declare it in "
                                    f"{commands[part][0][2]} of setup.py")
                    continue
                for installs, command, where in commands[part]:
                    if not installs.intersection(dists):
                        problems.append(f"{rel}:{line} imports {module!r} (distribution {' or '.join(dists)}), "
                                        f"which setup.py does not declare for {command}: add it to {where}")
    return problems


def test_every_import_is_declared_for_the_command_that_needs_it():
    problems = check()
    assert not problems, "\n".join(problems)


def _copy_repo(tmp_path: Path) -> Path:
    """The repository's sources and setup.py in a temporary folder, to break one thing in."""
    copy = tmp_path / "repo"
    for part in ("mate_kd", "tests", "benchmarks", "scripts"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "fixtures", "assets"))
    for name in ("setup.py", "README.md"):
        shutil.copy(REPO / name, copy / name)
    return copy


def test_a_removed_declaration_is_named(tmp_path):
    repo = _copy_repo(tmp_path)
    setup_py = repo / "setup.py"
    text = setup_py.read_text(encoding="utf-8")
    assert '        "scipy",\n' in text
    setup_py.write_text(text.replace('        "scipy",\n', ""), encoding="utf-8")
    problems = check(repo)
    assert problems and all("'scipy' (distribution scipy)" in p for p in problems), problems
    assert any(p.startswith("mate_kd/") and p.endswith("add it to install_requires") for p in problems), problems


def test_an_extra_the_readme_test_command_misses_is_named(tmp_path):
    repo = _copy_repo(tmp_path)
    readme = repo / "README.md"
    command = readme_command("Test it", readme)
    readme.write_text(readme.read_text(encoding="utf-8").replace(command, "pip install -e . && python -m pytest -q"),
                      encoding="utf-8")
    problems = check(repo)
    assert any(p.startswith("tests/") and "'pytest' (distribution pytest)" in p for p in problems), problems


def test_an_import_that_nothing_installed_provides_is_named(tmp_path):
    repo = _copy_repo(tmp_path)
    (repo / "mate_kd" / "extra.py").write_text("def f():\n    import surely_not_an_installed_module\n",
                                              encoding="utf-8")
    problems = check(repo)
    assert problems == ["mate_kd/extra.py:2 imports 'surely_not_an_installed_module', which no installed "
                        "distribution provides: install the distribution that provides it and declare it in "
                        "install_requires of setup.py"]


def test_imports_are_read_from_every_form(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import a.b, c\nfrom d.e import f\nfrom . import g\nfrom .h import i\n"
                      "def j():\n    import k\n    pytest.importorskip('l.m')\n    importlib.import_module('n')\n",
                      encoding="utf-8")
    assert sorted(imported_modules(source)) == [("a", 1), ("c", 1), ("d", 2), ("k", 6), ("l", 7), ("n", 8)]


def _ci(*args: str, repo: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / ".ci" / "run"), *args], capture_output=True, text=True, timeout=300,
                          env=env)


def _ci_copy(tmp_path: Path, commands: dict[str, str]) -> Path:
    """.ci/run beside a README whose set-up blocks hold other commands."""
    copy = tmp_path / "repo"
    (copy / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", copy / ".ci" / "run")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for label, command in commands.items():
        readme = readme.replace(readme_command(label), command)
    (copy / "README.md").write_text(readme, encoding="utf-8")
    return copy


def test_ci_runs_the_readme_commands_verbatim():
    proc = _ci("commands")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [readme_command("Run it"), readme_command("Test it")]
    assert extras_installed_by(readme_command("Test it")) == {"test"}
    assert extras_installed_by(readme_command("Run it")) == set()


@pytest.mark.parametrize("label", ["Run it", "Test it"])
def test_ci_refuses_a_readme_without_the_command(tmp_path, label):
    repo = _ci_copy(tmp_path, {})
    readme = repo / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace(label, "Try it"), encoding="utf-8")
    proc = _ci("commands", repo=repo)
    assert proc.returncode == 2
    assert f"exactly one command in the fenced block after the line starting with '{label}'" in proc.stderr


def test_ci_runs_the_test_command_in_a_fresh_venv_and_removes_it(tmp_path):
    """Nothing of this machine's Python reaches the command: not its packages (matplotlib is
    installed here), not PYTHONPATH (pointing at this checkout)."""
    repo = _ci_copy(tmp_path, {"Test it": 'python -c "import sys; print(sys.prefix)" && python -c "import mate_kd"'})
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    proc = _ci("test", repo=repo, env={**os.environ, "TMPDIR": str(venvs), "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No module named 'mate_kd'" in proc.stdout
    prefix = proc.stdout.splitlines()[1]
    assert Path(prefix).parent.parent == venvs and Path(prefix).name == "venv", proc.stdout
    assert not list(venvs.iterdir())
    proc = _ci("test", repo=_ci_copy(tmp_path / "2", {"Test it": 'python -c "import matplotlib"'}),
               env={**os.environ, "TMPDIR": str(venvs)})
    assert proc.returncode == 1 and "No module named 'matplotlib'" in proc.stdout, proc.stdout + proc.stderr


def test_ci_requires_the_quickstart_table(tmp_path):
    repo = _ci_copy(tmp_path, {"Run it": "echo no table here"})
    proc = _ci("quickstart", repo=repo, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 1
    assert "no table here" in proc.stdout
    assert "the run command did not print the results table" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
