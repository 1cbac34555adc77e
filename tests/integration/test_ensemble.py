"""A backbone ensemble is one backbone: `train(..., backbone="mobilenet_v2+efficientnet_lite1")` makes a model whose
features are its members' side by side, each cached under its own key at the ensemble's one crop, whose head reads each
member's features scaled to one length, with "none of these" and the temperature fitted on them; the saved model loads back
and answers the same, through every surface (predict, pixels, export, Grad-CAM of a member)."""

import json

import numpy as np
import pytest

import zoolens
from zoolens.inference.model import Model
from zoolens.runtime.extractor import pretrained_extractor
from zoolens.runtime.features import cache_dir
from zoolens.runtime.pretrained_kit import find_kit

pytestmark = pytest.mark.slow
MEMBERS = ("mobilenet_v2", "efficientnet_lite1")  # 224 and 240 px: the ensemble sees one 240-px crop


@pytest.fixture(scope="module")
def ensemble(small_animals, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "model"
    return zoolens.train(small_animals, out, progress=False, backbone="+".join(MEMBERS)), out


def photos_of(folder, n=6):
    return sorted(folder.rglob("*.jpg"))[:n]


def lone_members(model):
    """Each member as a backbone alone, at the ensemble's crop and normalisation, from its own kit."""
    from zoolens.models.available import describe_backbone

    return [pretrained_extractor(name, member.preprocessing, find_kit(describe_backbone(name)))
            for name, member in zip(MEMBERS, model.extractor.members)]


def test_its_features_are_the_members_side_by_side_each_cached_under_its_own_key(ensemble, small_animals):
    model, _ = ensemble
    members = model.extractor.members
    assert [member.info.name for member in members] == list(MEMBERS)
    assert {member.input_size for member in members} == {240}  # the largest member's crop, for all
    alone = lone_members(model)
    assert model.feature_width == sum(one.feature_dim for one in alone) == 1280 + 1280
    photos = photos_of(small_animals)
    found = model.features_of_paths(photos)
    assert found.computed == 0  # training cached every member's features of its photos
    expected = np.concatenate([one.features_of_paths(photos).features for one in alone], axis=1)
    np.testing.assert_allclose(found.features, expected, atol=1e-6)
    keys = [member.key for member in members]
    assert len(set(keys)) == 2 and all((cache_dir() / "features" / f"{key}.sqlite").is_file() for key in keys)


def test_the_head_reads_each_member_normalised_and_is_calibrated_on_that(ensemble, small_animals):
    from zoolens.models.dense_head import fit_temperature

    model, _ = ensemble
    features = model.features_of_paths(photos_of(small_animals)).features
    from zoolens.models.member_scaling import MEMBER_LENGTH

    scaled = np.concatenate([MEMBER_LENGTH * part / np.linalg.norm(part, axis=1, keepdims=True)
                             for part in np.split(features, [1280], 1)], axis=1)
    np.testing.assert_allclose(model.class_logits(features), scaled @ model.head.weight.T + model.head.bias, atol=1e-4)
    assert model.head.member_widths == (1280, 1280)
    split = [line.split(",") for line in (model.path / "split.csv").read_text().splitlines()[1:]]
    val = [small_animals / row[0] for row in split if row[-1] == "val"]
    labels = np.array([model.classes.index(path.parent.name) for path in val])
    logits = model.class_logits(model.features_of_paths(val).features)
    assert model.temperature == pytest.approx(fit_temperature(logits, labels), rel=1e-6)


def test_none_of_these_is_fitted_on_the_ensemble_with_its_members_imagenet_classifiers(ensemble):
    model, _ = ensemble
    check = model.open_set
    assert check is not None and check.summary["animal_check"] == "on" and check.summary["features"] == "own"
    assert check.bank.shape[1] == model.feature_width
    heads = [one.imagenet_head()[0] for one in lone_members(model)]
    rng = np.random.default_rng(0)
    features = rng.random((3, model.feature_width), np.float32)
    mean_logits = sum(features[:, i * 1280:(i + 1) * 1280] @ head.weight.T + head.bias
                      for i, head in enumerate(heads)) / 2
    expected = np.exp(mean_logits - mean_logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(check.imagenet.probabilities(features), expected, atol=2e-3)  # float16 as saved


def test_its_distance_check_reads_a_further_neighbour_than_one_backbones(ensemble, trained_model):
    """An ensemble's 10th-neighbour threshold let in a quarter of unknown animals (docs/measurements.md): its bank is
    read at the ENSEMBLE_NEIGHBOURS-th neighbour, at most its smallest class's count, and saved so."""
    from zoolens.models.open_set import ENSEMBLE_NEIGHBOURS, NEIGHBOURS

    model, out = ensemble
    fewest = int(np.bincount(model.open_set.bank_labels).min())
    assert model.open_set.neighbours == min(ENSEMBLE_NEIGHBOURS, fewest) > NEIGHBOURS
    assert Model.load(out).open_set.neighbours == model.open_set.neighbours
    assert trained_model.open_set.neighbours == NEIGHBOURS  # one backbone: as before


def test_the_saved_model_names_its_members_reloads_and_answers_the_same(ensemble, small_animals):
    from PIL import Image

    model, out = ensemble
    described = json.loads((out / "zoolens.json").read_text())["backbone"]
    assert described["name"] == "+".join(MEMBERS)
    assert [member["name"] for member in described["members"]] == list(MEMBERS)
    loaded = Model.load(out)
    assert [member.key for member in loaded.extractor.members] == [member.key for member in model.extractor.members]
    photos = photos_of(small_animals)
    again, first = loaded.predict(photos), model.predict(photos)
    assert [(p.verdict, p.label, p.reason) for p in again] == [(p.verdict, p.label, p.reason) for p in first]
    np.testing.assert_allclose([p.confidence for p in again], [p.confidence for p in first], atol=1e-6)
    images = [Image.open(path) for path in photos]
    np.testing.assert_allclose(loaded.predict_proba_images(images), model.predict_proba_paths(photos)[0], atol=1e-5)
    pixels = np.stack([np.asarray(Image.open(path).convert("RGB").resize((240, 240))) for path in photos])
    assert loaded.features_of_pixels(pixels).shape == (len(photos), 2560)  # the batch job's way: one crop for all


def test_export_is_one_file_that_answers_as_the_model(ensemble, small_animals, tmp_path):
    from zoolens.data.folders import Sample
    from zoolens.inference.export import check_export, export_onnx

    _, out = ensemble
    loaded = Model.load(out)
    path = export_onnx(loaded, tmp_path / "model.onnx")
    check = check_export(loaded, path, [Sample(p, p.parent.name) for p in photos_of(small_animals)])
    assert check.same_top1 == check.images == 6 and check.max_probability_difference < 1e-4
    assert list(tmp_path.iterdir()) == [path]


def test_grad_cam_is_of_one_member_and_says_which(ensemble, small_animals):
    from zoolens.evaluation.explain import Explainable, explain

    model, out = ensemble
    photo = photos_of(small_animals, 1)
    first = explain(Model.load(out), photo)[0]
    assert "Grad-CAM of mobilenet_v2, one member of mobilenet_v2+efficientnet_lite1" in first.title
    second = explain(Explainable.from_model(Model.load(out), member="efficientnet_lite1"), photo)[0]
    assert "Grad-CAM of efficientnet_lite1" in second.title
    assert not np.allclose(first.heatmaps["gradcam"], second.heatmaps["gradcam"])
    assert first.prediction.describe() in first.title  # the whole ensemble's answer


def test_the_batch_job_answers_as_predict_does(ensemble, small_animals, tmp_path):
    import pandas as pd

    from zoolens.inference.batch.job import predict_folder

    _, out = ensemble
    loaded = Model.load(out)
    predict_folder(loaded, small_animals / "cats", tmp_path / "results.parquet", workers=0, chunk_size=8,
                   progress=False)
    rows = pd.read_parquet(tmp_path / "results.parquet").set_index("path")
    photos = sorted((small_animals / "cats").glob("*.jpg"))
    answers = loaded.predict(photos)
    found = rows.loc[[str(p) for p in photos]]
    assert [(verdict, label if isinstance(label, str) else None) for verdict, label in zip(found["verdict"],
                                                                                           found["label"])] \
        == [(a.verdict, a.label) for a in answers]
    np.testing.assert_allclose(rows.loc[[str(p) for p in photos], "confidence"], [a.confidence for a in answers],
                               atol=1e-5)


def test_the_report_names_the_members(ensemble, tmp_path):
    from zoolens.evaluation.report import write_report

    _, out = ensemble
    page = write_report(out, out=tmp_path / "report.html", progress=False, gallery_size=2).read_text()
    assert "mobilenet_v2+efficientnet_lite1" in page
