"""Caches are data to check, not to trust (issue 32: findings 4, 11, 12). Every file under ZOOLENS_CACHE (the
pretrained kits, the feature and digest SQLite files, the ONNX exports) is poisoned in turn as an unlucky or hostile
user would, and `zoolens train` / `zoolens predict` are run as typed: the poison is named in one warning line and
rebuilt, the model made still answers well above chance, and a model that would not load or answer never replaces
a good one."""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_subset, tree_snapshot
from safetensors import safe_open
from safetensors.numpy import save_file

from zoolens.cli.program import main
from zoolens.inference.model import Model
from zoolens.models.available import describe_backbone
from zoolens.runtime import features, pretrained_kit

# Slow: each runs `zoolens train` or `predict` (2-30 s, a kit or ONNX file rebuilt)


@pytest.fixture(scope="module")
def photos(animals3, tmp_path_factory):
    """(training folder of 16 photos per class, 12 other photos of known class)."""
    root = tmp_path_factory.mktemp("poison")
    data = copy_subset(animals3, root / "animals", per_class=16)
    other = copy_subset(animals3, root / "other", per_class=4, offset=500)
    return data, sorted(other.rglob("*.jpg"))


@pytest.fixture(scope="module")
def good_cache(photos, tmp_path_factory):
    """A cache as a first run leaves it (kit, features, digests, ONNX file), and the good model it made."""
    import zoolens

    root = tmp_path_factory.mktemp("good")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOOLENS_CACHE", str(root / "cache"))
        patch.setattr(features, "_ENGINES", {})
        zoolens.train(photos[0], root / "model", progress=False)
    assert sorted(p.name for p in (root / "cache").iterdir()) == ["features", "kits", "onnx"]
    return root / "cache", root / "model"


@pytest.fixture
def cache(good_cache, tmp_path, monkeypatch) -> Path:
    """A copy of the good cache, this test's own (ZOOLENS_CACHE is read at each call), no engine kept in memory."""
    copy = shutil.copytree(good_cache[0], tmp_path / "cache")
    monkeypatch.setenv("ZOOLENS_CACHE", str(copy))
    monkeypatch.setattr(features, "_ENGINES", {})
    return copy


def zoolens(argv, capsys) -> tuple[int, list[str], str]:
    """The CLI in this process: (exit code, stderr lines, stdout)."""
    code = main([str(a) for a in argv])
    said = capsys.readouterr()
    assert "Traceback" not in said.err + said.out
    return code, said.err.splitlines(), said.out


def naming(lines: list[str], path: Path) -> list[str]:
    return [line for line in lines if str(path) in line]


def answers_well(model_path: Path, others: list[Path]) -> None:
    answers = Model.load(model_path).predict(others, open_set="off")
    right = sum(a.label == p.parent.name for a, p in zip(answers, others))
    assert right >= 0.75 * len(others), [(a.label, p.parent.name) for a, p in zip(answers, others)]


# ---- the pretrained kit ------------------------------------------------------------------------------------
def kit_file(cache: Path) -> Path:
    return pretrained_kit.kit_path(describe_backbone("mobilenet_v2"))


def rewrite_kit(path: Path, change_arrays=None, change_facts=None) -> None:
    with safe_open(str(path), framework="numpy") as handle:
        facts, arrays = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    (change_arrays or (lambda a: None))(arrays)
    (change_facts or (lambda f: None))(facts)
    save_file(arrays, str(path), metadata=facts)


def all_nan(arrays):
    for array in arrays.values():
        if array.dtype.kind == "f":
            array[...] = np.nan


def one_inf(arrays):
    arrays[pretrained_kit.IMAGENET_WEIGHT][3, 7] = np.inf


def reshaped(arrays):
    name = next(n for n, a in arrays.items() if n.startswith("backbone.") and a.ndim == 4 and a.shape[-1] == 3)
    arrays[name] = arrays[name].reshape(arrays[name].shape[0], -1, 1, 1).copy()


def another_networks(arrays):
    """The same architecture with other weights (an untrained MobileNetV2): every shape fits."""
    from zoolens.models.backbones import build_backbone

    other = build_backbone("mobilenet_v2", pretrained=False)
    for name, tensor in other.state_dict().items():
        arrays[f"backbone.{name}"] = tensor.numpy().copy()


def wrong_width(facts):
    facts["feature_dim"] = "1000"


KIT_POISONS = {
    "nan": ((all_nan, None), "holds NaN or infinite values"),
    "inf": ((one_inf, None), "holds NaN or infinite values"),
    "reshaped tensor": ((reshaped, None), "SHA-256 differs"),
    "wrong feature_dim": ((None, wrong_width), "does not fit its feature_dim 1000"),
    "another network's weights": ((another_networks, None), "SHA-256 differs"),
}


@pytest.mark.parametrize("poison", KIT_POISONS)
def test_a_poisoned_kit_is_named_rebuilt_and_the_model_answers(poison, cache, photos, tmp_path, capsys):
    (arrays, facts), why = KIT_POISONS[poison]
    kit = kit_file(cache)
    rewrite_kit(kit, arrays, facts)
    poisoned = kit.read_bytes()
    code, err, _ = zoolens(["train", photos[0], "--out", tmp_path / "M"], capsys)
    assert code == 0, err
    warned = naming(err, kit)
    assert len(warned) == 1 and why in warned[0] and "built again" in warned[0], err
    assert kit.read_bytes() != poisoned and pretrained_kit.find_kit(describe_backbone("mobilenet_v2")) is not None
    answers_well(tmp_path / "M", photos[1])
    assert Model.load(tmp_path / "M").network is not None  # its PyTorch network loads too (strict shapes)


# ---- the last check before a model is published ------------------------------------------------------------
def trust_every_kit(monkeypatch):
    monkeypatch.setattr(pretrained_kit, "kit_problem", lambda kit, facts: None)


@pytest.mark.parametrize("poison", ["nan kit", "nan features"])
def test_a_model_that_would_not_answer_never_replaces_a_good_one(poison, cache, good_cache, photos, tmp_path,
                                                                monkeypatch, capsys):
    """With the cache's own checks told to trust the poison, train() still refuses to publish what it made."""
    model = shutil.copytree(good_cache[1], tmp_path / "M")
    (model / "notes.txt").write_text("mine")
    before = tree_snapshot(model)
    if poison == "nan kit":
        trust_every_kit(monkeypatch)
        rewrite_kit(kit_file(cache), all_nan)
    else:
        monkeypatch.setattr(features.FeatureCache, "_usable", lambda self, blob, sha: np.full(1280, np.nan, np.float32))
    code, err, out = zoolens(["train", photos[0], "--out", model], capsys)
    assert code == 2, err
    assert err[-1].startswith(f"zoolens: error: {model}: the new model was not saved (") and "unchanged" in err[-1]
    assert tree_snapshot(model) == before
    assert not list(tmp_path.glob(".M.partial*")) and not (tmp_path / "M.partial").exists()
    code, err, _ = zoolens(["train", photos[0], "--out", tmp_path / "new"], capsys)
    assert code == 2 and not (tmp_path / "new").exists()


# ---- the SQLite caches ----------------------------------------------------------------------------------------
def feature_file(cache: Path) -> Path:
    return next(p for p in (cache / "features").glob("*.sqlite") if p.name != "digests.sqlite")


def replace_database(path: Path, statement: str | None) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    if statement is None:
        path.write_bytes(b"not a database at all " * 100)
        return
    with sqlite3.connect(path) as db:
        db.execute(statement)
        db.execute("INSERT INTO " + statement.split()[2].split("(")[0] + " VALUES (1)")
    db.close()


SCHEMAS = {
    "digests(path int)": ("digests", "CREATE TABLE digests(path int)", "has other columns (path INT)"),
    "features(x int)": ("features", "CREATE TABLE features(x int)", "has other columns (x INT)"),
    "features not SQLite": ("features", None, "not a cache file"),
}


def database(cache: Path, which: str) -> Path:
    return cache / "features" / "digests.sqlite" if which == "digests" else feature_file(cache)


@pytest.mark.parametrize("command", ["train", "predict"])
@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_cache_file_of_another_schema_is_set_aside_and_rebuilt(schema, command, cache, good_cache, photos, tmp_path,
                                                                 capsys):
    which, statement, why = SCHEMAS[schema]
    path = database(cache, which)
    replace_database(path, statement)
    if command == "train":
        code, err, _ = zoolens(["train", photos[0], "--out", tmp_path / "M"], capsys)
        answers_well(tmp_path / "M", photos[1])
    else:
        code, err, out = zoolens(["predict", good_cache[1], *photos[1]], capsys)
        right = sum(f"{p}  {p.parent.name} (" in out for p in photos[1])
        assert right >= 9, out
    assert code == 0, err
    warned = naming(err, path)
    assert len(warned) == 1 and why in warned[0] and "set aside" in warned[0], err
    assert path.with_name(path.name + ".unusable").exists()
    with sqlite3.connect(path) as db:  # started anew, and filled
        assert db.execute(f"SELECT COUNT(*) FROM {which}").fetchone()[0] > 0


def poison_rows(path: Path, change) -> int:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT digest, vector FROM features").fetchall()
        for digest, blob in rows:
            poisoned = change(np.frombuffer(blob, np.float32).copy()).astype(np.float32).tobytes()
            db.execute("UPDATE features SET vector = ?, sha = ? WHERE digest = ?",
                       (poisoned, hashlib.sha1(poisoned).hexdigest(), digest))  # a checksum that matches
    db.close()
    return len(rows)


def nan_at_3(vector):
    vector[3] = np.nan
    return vector


ROWS = {"wrong width": (lambda v: v[:100], "not 1280 floats wide"), "NaN": (nan_at_3, "not finite")}


@pytest.mark.parametrize("command", ["train", "predict"])
@pytest.mark.parametrize("row", ROWS)
def test_a_cached_row_of_the_wrong_width_or_nan_is_computed_again(row, command, cache, good_cache, photos, tmp_path,
                                                                  capsys):
    change, why = ROWS[row]
    path = feature_file(cache)
    if command == "predict":  # the other photos' rows in the cache first
        assert zoolens(["predict", good_cache[1], *photos[1]], capsys)[0] == 0
    poisoned = poison_rows(path, change)
    if command == "train":
        code, err, _ = zoolens(["train", photos[0], "--out", tmp_path / "M"], capsys)
        answers_well(tmp_path / "M", photos[1])
    else:
        code, err, out = zoolens(["predict", good_cache[1], *photos[1]], capsys)
        assert sum(f"{p}  {p.parent.name} (" in out for p in photos[1]) >= 9, out
    assert code == 0, err
    warned = naming(err, path)
    assert len(warned) == 1 and why in warned[0] and "computed again" in warned[0], err
    assert str(poisoned if command == "train" else len(photos[1])) in warned[0]
    assert features.FeatureCache(path.stem, 1280).get_many([d for (d,) in sqlite3.connect(path).execute(
        "SELECT digest FROM features")])  # rewritten whole


# ---- the ONNX exports -------------------------------------------------------------------------------------------
def another_onnx(path: Path, key: str | None, size: int = 224) -> None:
    """A valid ONNX network with the same input and output as the backbone's (8-bit pixels in, 1280 features out)
    that is another network: the mean colour times a fixed matrix. With `key`, it claims to be that export."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    matrix = numpy_helper.from_array(np.random.default_rng(1).normal(size=(3, 1280)).astype(np.float32), "matrix")
    graph = helper.make_graph(
        [helper.make_node("Cast", ["images"], ["floats"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["floats"], ["mean"], axes=[1, 2], keepdims=0),
         helper.make_node("MatMul", ["mean", "matrix"], ["outputs"])],
        "another", [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", 1280])], [matrix])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    if key is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = features.ONNX_KEY, key
        entry = model.metadata_props.add()
        entry.key, entry.value = features.ONNX_PROBE, "AAAAAA=="
    onnx.save(model, str(path))


ONNX_POISONS = {
    "garbage": (lambda path, key: path.write_bytes(b"\x00garbage" * 1000), "not an ONNX file ONNX Runtime can run"),
    "another network's": (lambda path, key: another_onnx(path, None), "not this network's export"),
    "another network's, claiming this key": (another_onnx, "differ from those PyTorch gave"),
}


@pytest.mark.parametrize("poison", ONNX_POISONS)
def test_a_poisoned_onnx_file_is_named_exported_again_and_answers_are_right(poison, cache, good_cache, photos,
                                                                           capsys):
    make, why = ONNX_POISONS[poison]
    path = next((cache / "onnx").iterdir())
    make(path, path.name.removesuffix("-pixels.onnx"))
    for table in ("features",):  # the photos are new to the feature cache: the engine runs
        with sqlite3.connect(feature_file(cache)) as db:
            db.execute(f"DELETE FROM {table}")
        db.close()
    code, err, out = zoolens(["predict", good_cache[1], *photos[1]], capsys)
    assert code == 0, err
    warned = naming(err, path)
    assert len(warned) == 1 and why in warned[0] and "exported again" in warned[0], err
    assert sum(f"{p}  {p.parent.name} (" in out for p in photos[1]) >= 9, out
    features._ENGINES.clear()
    code, err, _ = zoolens(["predict", good_cache[1], photos[1][0]], capsys)
    assert code == 0 and not naming(err, path), err  # the new export is trusted: checked, and no warning
