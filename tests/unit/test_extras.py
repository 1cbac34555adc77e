"""The core install trains, evaluates, predicts, reports, explains and finds data issues; Streamlit, Optuna and Ray
come with the extras apps, studies and scale, and a command that needs one that is missing says which to install,
in one line (pyproject.toml; zoolens.errors.require_extra).
The tests that train or start processes: tests/integration/test_extras_commands.py."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from zoolens.cli.program import main
from zoolens.errors import ZoolensError

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {"streamlit": "apps", "optuna": "studies", "ray": "scale"}  # library: the extra that brings it
# The only modules that may import each of them (late, inside the function that needs it).
IMPORTED_BY = {"streamlit": {"zoolens/apps/web.py"}, "optuna": {"zoolens/studies/tune.py"},
               "ray": {"zoolens/inference/batch/ray_engine.py"}}


def refusal(extra: str, command: str, library: str) -> str:
    return f"zoolens: error: {command} needs {library}, which this installation of zoolens leaves out: " \
           f"pip install 'zoolens[{extra}]'"


# ---- what is declared ---------------------------------------------------------------------------------
def test_the_core_leaves_out_each_extras_library_and_all_brings_every_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~\[ ;]", requirement)[0].lower() for requirement in project["dependencies"]}
    extras = project["optional-dependencies"]
    for library, extra in EXTRAS.items():
        assert library not in core, f"{library} is a core dependency; it belongs in [{extra}]"
        assert any(requirement.startswith(library) for requirement in extras[extra]), (extra, extras[extra])
    (brought,) = [re.fullmatch(r"zoolens\[(.*)\]", requirement)[1] for requirement in extras["all"]]
    assert set(brought.split(",")) == set(EXTRAS.values())


def test_make_setup_installs_every_extra():
    installs = [line for line in (ROOT / "Makefile").read_text().splitlines()
                if "pip install" in line and " -e " in line]  # " -e ", not the "-e" of ai-edge-litert
    assert len(installs) == 1 and re.search(r"-e '\.\[[^]]*\ball\b", installs[0]), installs


def optional_imports(path: Path) -> set[str]:
    """The extras' libraries that the file imports, at any depth (a late import counts)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        found |= {name.split(".")[0] for name in names} & set(EXTRAS)
    return found


def test_only_the_modules_of_an_extra_import_its_library():
    source = ROOT / "src"
    importers = {library: set() for library in EXTRAS}
    mentions = re.compile(rf"\b({'|'.join(EXTRAS)})\b")
    for path in source.rglob("*.py"):
        if not mentions.search(path.read_text(encoding="utf-8")):  # parsing every file takes seconds
            continue
        for library in optional_imports(path):
            importers[library].add(path.relative_to(source).as_posix())
    assert importers == IMPORTED_BY


# ---- what a user without an extra sees ----------------------------------------------------------------
class Refuse:
    """An import finder that refuses the extras' libraries, as on a machine without them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def without_extras(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    for name in [name for name in sys.modules if name.split(".")[0] in EXTRAS]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def photos(tmp_path) -> Path:
    for name, colour in (("cats", "orange"), ("dogs", "brown")):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "photos" / name / f"{i}.png")
    return tmp_path / "photos"


def test_web_without_streamlit_names_the_apps_extra_and_starts_nothing(without_extras, monkeypatch, capsys):
    def no_server(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_server)
    assert main(["web", "--headless", "--port", "8599"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [refusal("apps", "zoolens web", "streamlit")] and out == ""


def test_tune_without_optuna_names_the_studies_extra_and_writes_nothing(without_extras, photos, tmp_path, capsys):
    assert main(["tune", str(photos), "--out", str(tmp_path / "tuned"), "--trials", "2"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [refusal("studies", "zoolens tune", "optuna")] and out == ""
    assert not (tmp_path / "tuned").exists()


def test_the_tune_api_without_optuna_raises_the_same_line(without_extras, photos, tmp_path):
    from zoolens.studies.tune import run_tune

    with pytest.raises(ZoolensError, match=re.escape("pip install 'zoolens[studies]'")):
        run_tune(photos, tmp_path / "tuned", trials=2, progress=False)
    assert not (tmp_path / "tuned").exists()


def test_the_ray_engine_without_ray_names_the_scale_extra_before_writing(without_extras, photos, tmp_path):
    from zoolens.inference.batch.job import predict_folder

    with pytest.raises(ZoolensError) as refused:
        predict_folder(tmp_path / "no-model-needed-yet", photos, tmp_path / "results.parquet", engine="ray")
    assert str(refused.value) == "`engine` ray needs ray, which this installation of zoolens leaves out: " \
                                 "pip install 'zoolens[scale]'"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_require_extra_lets_an_installed_library_through():
    from zoolens.errors import require_extra

    require_extra("PIL", "apps", "zoolens web")  # installed: no error
    with pytest.raises(ZoolensError, match=re.escape("zoolens web needs no_such_library_zl, which this installation "
                                                     "of zoolens leaves out: pip install 'zoolens[apps]'")):
        require_extra("no_such_library_zl", "apps", "zoolens web")
