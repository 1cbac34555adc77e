"""The core install runs the core commands (train, evaluate, predict, report, explain, data issues) with Streamlit,
Optuna and Ray unimportable, and the commands that need an extra name it in one line.
The import-level checks are in tests/unit/test_extras.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import block_imports, copy_subset


EXTRAS = {"streamlit": "apps", "optuna": "studies", "ray": "scale"}  # library: the extra that brings it


def refusal(extra: str, command: str, library: str) -> str:
    return f"zoolens: error: {command} needs {library}, which this installation of zoolens leaves out: " \
           f"pip install 'zoolens[{extra}]'"


# ---- the core commands, whole, where the extras cannot be imported ------------------------------------
CHILD = """
import contextlib, io, json
from zoolens.cli.program import main
said = []
for arguments in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(arguments)
    said.append([arguments[:2], code, err.getvalue()])
print(json.dumps({"said": said, "imported": sorted({m.split(".")[0] for m in sys.modules} & %r)}))
""" % set(EXTRAS)


def test_the_core_commands_work_without_any_extra_and_the_others_name_theirs(animals3, tmp_path):
    data = copy_subset(animals3, tmp_path / "photos", per_class=20)
    model, photo = tmp_path / "model", data / "cats" / sorted(os.listdir(data / "cats"))[0]
    commands = [
        ["train", data, "--out", model],
        ["evaluate", model, data],
        ["predict", model, photo, data / "dogs"],
        ["report", model, "--out", tmp_path / "report.html"],
        ["explain", model, photo, "--out", tmp_path / "explanations"],
        ["data", "issues", data, "--out", tmp_path / "issues"],
        ["predict", model, data / "panda", "--out", tmp_path / "results.parquet", "--engine", "ray"],
        ["web", "--headless", "--port", "8598"],
        ["tune", data, "--out", tmp_path / "tuned"],
    ]
    done = subprocess.run([sys.executable, "-c", block_imports(tuple(EXTRAS)) + CHILD,
                           json.dumps([[str(word) for word in command] for command in commands])],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["imported"] == []
    core, refused = result["said"][:6], result["said"][6:]
    for command, code, err in core:
        assert code == 0, f"zoolens {' '.join(command)} without the extras: {err[-2000:]}"
    assert (model / "zoolens.json").is_file() and (tmp_path / "report.html").is_file()
    assert any((tmp_path / "explanations").iterdir()) and (tmp_path / "issues" / "to_review.csv").is_file()
    expected = [refusal("scale", "--engine ray", "ray"), refusal("apps", "zoolens web", "streamlit"),
                refusal("studies", "zoolens tune", "optuna")]
    assert [(code, err.splitlines()) for _, code, err in refused] == [(2, [line]) for line in expected]
    assert not (tmp_path / "results.parquet").exists() and not (tmp_path / "tuned").exists()
