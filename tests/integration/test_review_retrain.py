"""The web app's review page in a real browser: the flagged photos shown, most likely mislabelled first; a decision
taken by its key lands in the corrections file; "Retrain now" shows test accuracy before and after; the photo folder
is byte-identical after. The review loop's checks without a browser: tests/unit/test_review.py."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from helpers import chromium_browser, copy_subset, streamlit_screenshot, streamlit_server, tree_snapshot

from zoolens.apps.review import Review


@pytest.fixture(scope="module")
def planted(animals3, tmp_path_factory):
    """30 photos of each animals3 class with 3 dogs filed under cats/."""
    data = copy_subset(animals3, tmp_path_factory.mktemp("review") / "data", per_class=30)
    dogs = sorted((animals3 / "dogs").iterdir())[800:803]
    return data, {shutil.copyfile(p, data / "cats" / f"dog_{p.name}").relative_to(data).as_posix() for p in dogs}


def _decided(corrections: Path, seconds: float = 10.0, rows: int = 1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if corrections.exists() and corrections.read_text().count("\n") > rows:
            return True
        time.sleep(0.2)
    return False


def test_review_page_records_a_relabel_and_retrains_before_and_after(planted, tmp_path):
    data, dogs = planted
    before = tree_snapshot(data)
    corrections = tmp_path / "decisions.csv"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    review = Review(data, corrections)
    first = review.flags()[0]
    assert first.path in dogs and first.suggested == "dogs"  # what the page must show on top
    with streamlit_server(["--models-dir", str(tmp_path / "no-models"), "--review", str(data),
                           "--corrections", str(corrections)], workdir) as url, chromium_browser() as browser:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=60_000)
        page.get_by_text("Review labels").first.click(timeout=60_000)
        page.get_by_text("Next up:").wait_for(timeout=120_000)
        assert first.path in page.inner_text("body")
        page.get_by_role("button", name="Retrain now").wait_for(timeout=60_000)
        for _ in range(3):  # a key pressed while the page is still drawing itself can be lost: press again, then
            page.get_by_text("Photos of your dataset worth").click()  # the page has the keyboard, not an input
            page.keyboard.press("a")  # take the suggestion: relabel to dogs
            if _decided(corrections):
                break
        page.wait_for_function("document.body.innerText.includes('relabel to dogs')", timeout=30_000)
        rows = list(csv.DictReader(corrections.open()))
        assert [(row["path"], row["action"], row["label"]) for row in rows] == [(first.path, "relabel", "dogs")]
        # The suggested fixes for the other training photos in doubt, in one click; the person's decision stays.
        fixes = review.undecided_fixes()
        assert fixes and first.path not in {fix.path for fix in fixes}
        accept = page.get_by_role("button", name=f"Accept the suggested fixes ({len(fixes)})")
        folder = Path(os.environ.get("ZOOLENS_SCREENSHOTS", tmp_path))
        folder.mkdir(parents=True, exist_ok=True)
        streamlit_screenshot(page, folder / "web-review-suggested-fixes.png")
        accept.click()
        assert _decided(corrections, rows=1 + len(fixes))
        rows = list(csv.DictReader(corrections.open()))
        assert (rows[0]["path"], rows[0]["action"], rows[0]["label"]) == (first.path, "relabel", "dogs")
        assert [(row["path"], row["action"], row["label"]) for row in rows[1:]] == [
            (fix.path, fix.action, fix.label) for fix in fixes]
        relabelled = 1 + sum(fix.action == "relabel" for fix in fixes)
        page.get_by_role("button", name="Retrain now").click()
        page.get_by_text("Before: labels as they were").wait_for(timeout=180_000)
        shown = page.inner_text("body")
        assert f"After: {relabelled} relabelled, {len(fixes) + 1 - relabelled} excluded" in shown and "%" in shown
        streamlit_screenshot(page, folder / "web-review.png")
        # Only the other kinds of flag: the mislabelled photos leave the page (the decision stays in the file).
        pill = page.get_by_role("button", name=re.compile(r"^Likely mislabelled \(\d+\)"))
        gone = f"!document.body.innerText.includes({json.dumps(first.path)})"
        for _ in range(3):  # a click while the page is still drawing itself can be lost, as a key press can
            if pill.get_attribute("aria-pressed") == "true":
                pill.click()
            try:
                page.wait_for_function(gone, timeout=20_000)
                break
            except PlaywrightTimeout:
                continue
        assert pill.get_attribute("aria-pressed") == "false" and page.evaluate(gone)
        streamlit_screenshot(page, folder / "web-review-other-kinds.png")
        page.close()
    assert tree_snapshot(data) == before
    assert list(workdir.iterdir()) == []
