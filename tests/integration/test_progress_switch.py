"""One progress switch (issue 33, item 4): `zoolens report` and `zoolens data issues` show their long work's bars
unless --quiet, through `progress.showing` around the work rather than a flag handed down every function; and the
library shows nothing unasked: `extract_features` and every extractor's `features_of_paths` share one default.

Each bar made is recorded with whether it is shown; photos are written fresh for each test (bytes no cache holds), so
that the features' bar is made at all."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from PIL import Image

from zoolens import progress
from zoolens.cli.program import main


class Bars:
    """Every bar `progress.progress_bar` makes, as (description, shown)."""

    def __init__(self, monkeypatch):
        self.made: list[tuple[str, bool]] = []
        made = self.made

        class Recorded(progress.PlainProgress):
            def __init__(self, total, desc, unit="img", enabled=True, initial=0):
                made.append((desc, enabled))
                super().__init__(total, desc, unit, enabled, initial)

        monkeypatch.setattr(progress, "in_a_terminal", lambda: False)
        monkeypatch.setattr(progress, "PlainProgress", Recorded)

    def named(self, desc: str) -> list[bool]:
        return [shown for name, shown in self.made if name == desc]


@pytest.fixture
def bars(monkeypatch) -> Bars:
    return Bars(monkeypatch)


@pytest.fixture
def feature_switches(monkeypatch) -> list[bool]:
    """Whether each `extract_features` call (every feature extraction goes through it) shows its bar, as it resolves
    its `progress`: made whether or not a photo is missing from the cache."""
    from zoolens.runtime import features

    original, switches = features.extract_features, []

    def recording(*args, **kwargs):
        given = inspect.signature(original).bind(*args, **kwargs)
        given.apply_defaults()
        switches.append(progress.shown() if given.arguments["progress"] is None else given.arguments["progress"])
        return original(*args, **kwargs)

    monkeypatch.setattr(features, "extract_features", recording)
    return switches


def fresh_photos(small_animals: Path, target: Path, per_class: int = 6) -> Path:
    """Photos of small_animals' classes, saved again with the folder's name inside: bytes no feature cache has."""
    for folder in sorted(p for p in small_animals.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for photo in sorted(folder.iterdir())[:per_class]:
            Image.open(photo).convert("RGB").save(target / folder.name / f"{photo.stem}.jpg", quality=90,
                                                  comment=str(target).encode())
    return target


def test_extract_features_and_every_features_of_paths_agree_on_one_default():
    from zoolens.inference.model import Model
    from zoolens.runtime.extractor import CombinedExtractor
    from zoolens.runtime.features import FeatureExtractor, extract_features
    from zoolens.runtime.views import ViewsExtractor

    defaults = {function.__qualname__: inspect.signature(function).parameters["progress"].default
                for function in (extract_features, FeatureExtractor.features_of_paths,
                                 CombinedExtractor.features_of_paths, ViewsExtractor.features_of_paths,
                                 Model.features_of_paths)}
    assert set(defaults.values()) == {False}, defaults


def test_extract_features_shows_its_bar_only_when_asked(small_animals, tmp_path, bars):
    from zoolens.models.available import describe_backbone
    from zoolens.runtime.extractor import pretrained_extractor
    from zoolens.runtime.features import extract_features
    from zoolens.runtime.pretrained_kit import find_kit

    info = describe_backbone("mobilenet_v2")
    network = pretrained_extractor("mobilenet_v2", info.preprocessing, find_kit(info))
    sets = {name: sorted(fresh_photos(small_animals, tmp_path / name, per_class=1).rglob("*.jpg"))
            for name in ("plain", "asked", "quiet-run", "shown-run")}
    extract_features(sets["plain"], network, info.preprocessing)
    extract_features(sets["asked"], network, info.preprocessing, progress=True)
    with progress.showing(False):
        extract_features(sets["quiet-run"], network, info.preprocessing, progress=None)
    with progress.showing(True):
        extract_features(sets["shown-run"], network, info.preprocessing, progress=None)
    assert bars.named("features") == [False, True, False, True]


# slow: out-of-fold heads on fresh features
@pytest.mark.parametrize("quiet", [False, True])
def test_data_issues_shows_its_bar_unless_quiet(small_animals, tmp_path, bars, quiet):
    data = fresh_photos(small_animals, tmp_path / "photos")
    assert main(["data", "issues", str(data), "--out", str(tmp_path / "issues")] + (["--quiet"] if quiet else [])) == 0
    assert bars.named("features") == [not quiet]


# slow: a whole report: evaluation, data issues, Grad-CAM
@pytest.mark.parametrize("quiet", [False, True])
def test_a_reports_work_shows_its_bars_unless_quiet(trained_model, small_animals, tmp_path, bars, feature_switches,
                                                    quiet):
    data = fresh_photos(small_animals, tmp_path / "photos")
    out = tmp_path / "report.html"
    assert main(["report", str(trained_model.path), "--data", str(data), "--out", str(out)]
                + (["--quiet"] if quiet else [])) == 0
    assert out.exists()
    made = {name for name, _ in bars.made}
    assert {"inspecting", "features", "explaining"} <= made, bars.made  # its long work: each has a bar
    assert {shown for _, shown in bars.made} == {not quiet}, bars.made
    assert len(feature_switches) >= 2 and set(feature_switches) == {not quiet}  # the evaluation's, the data issues'


def test_a_quiet_report_is_quiet_down_to_its_data_issues(trained_model, small_animals, tmp_path, bars,
                                                         feature_switches):
    """The data issues a report finds follow the report's switch: no flag of their own is handed down."""
    from zoolens.evaluation.report import write_report

    data = fresh_photos(small_animals, tmp_path / "photos")
    write_report(trained_model.path, data=data, out=tmp_path / "report.html", progress=False, gallery_size=1)
    assert bars.made and not any(shown for _, shown in bars.made), bars.made
    assert len(feature_switches) >= 2 and not any(feature_switches)
