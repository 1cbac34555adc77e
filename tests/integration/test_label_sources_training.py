"""Camera-trap labels as a dataset, end to end: a model trained from a labels CSV (zamba's layout) on the real files
of shared/datasets/camera-traps. Reading the labels alone: tests/unit/test_label_sources.py."""

from __future__ import annotations

import json
from pathlib import Path
from helpers import copy_subset, read_rows, write_csv

from zoolens.cli.program import main


def write_labels(path: Path, rows: list[list[str]], header=("filepath", "label")) -> Path:
    return write_csv(path, rows, header)


# ---- training from labels ---------------------------------------------------------------------------
def test_train_from_a_labels_csv_end_to_end(animals3, tmp_path):
    data = copy_subset(animals3, tmp_path / "trap", per_class=12)
    rows = [[f"{p.parent.name}/{p.name}", {"cats": "Felis catus", "dogs": "Canis familiaris",
                                             "panda": "Ailuropoda melanoleuca"}[p.parent.name]]
            for p in sorted(data.rglob("*.jpg"))]
    labels = write_labels(data / "labels.csv", rows)
    out = tmp_path / "model"
    assert main(["train", str(labels), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "zoolens.json").read_text())
    assert meta["classes"] == ["Ailuropoda melanoleuca", "Canis familiaris", "Felis catus"]
    assert meta["data"]["source"] == "labels" and meta["data"]["given"] == str(labels)
    assert meta["data"]["split_grouped_by"] == "event"
    _, split = read_rows(out / "split.csv")
    assert sorted(row["path"] for row in split) == sorted(row[0] for row in rows)
    assert meta["metrics"]["accuracy"] > 0.6
