"""Issue 32, findings 6 and 10: class names (a dataset's names.csv, a model's zoolens.json) and file names are text
wherever they are shown, never Markdown (an image loaded from any address, a link elsewhere); two classes never
share a displayed name. The tests that train or start processes: tests/integration/test_class_name_text_in_apps.py."""

from __future__ import annotations

import re

import pytest
from helpers import HOSTILE_NAMES, names_from

from zoolens.apps.web import as_text, html_text


# ---- finding 10: distinct names -------------------------------------------------------------------
@pytest.mark.parametrize("rows, expected", [
    ({"cats": "Dog", "dogs": "Dog"}, {"cats": "Dog (cats)", "dogs": "Dog (dogs)", "panda": "panda"}),
    # the id a repeated name gets must not make it another class's given name: "Dog (cats)" twice, before
    ({"cats": "Dog", "dogs": "Dog", "panda": "Dog (cats)"},
     {"cats": "Dog (cats)", "dogs": "Dog (dogs)", "panda": "Dog (cats) (panda)"}),
    ({"cats": "dogs"}, {"cats": "dogs (cats)", "dogs": "dogs", "panda": "panda"}),  # a class shown as its id keeps it
    # names that read the same on screen: composed and decomposed é, a zero-width space
    ({"cats": "Caf\u00e9", "dogs": "Cafe\u0301"}, {"cats": "Caf\u00e9 (cats)", "dogs": "Cafe\u0301 (dogs)",
                                                   "panda": "panda"}),
    ({"cats": "Dog", "dogs": "Do\u200bg"}, {"cats": "Dog (cats)", "dogs": "Do\u200bg (dogs)", "panda": "panda"}),
    ({"cats": "Tabby", "dogs": "Hound"}, {"cats": "Tabby", "dogs": "Hound", "panda": "panda"}),  # untouched
])
def test_two_classes_never_share_a_displayed_name(rows, expected, tmp_path):
    assert names_from(tmp_path, rows) == expected


# ---- finding 6: names are text ------------------------------------------------------------------------
def test_plain_text_is_left_as_it_is_and_markdown_signs_are_escaped():
    for plain in ("cats, dogs, panda", "Skipped tampered: missing 'classes'", "golden retriever (n02099601)"):
        assert as_text(plain) == plain
    for hostile in [*HOSTILE_NAMES.values(), "1. cat", "- cat", "`x`", "$x^2$", "<b>x</b>", ":cat:", "a\n\n![x](y)"]:
        shown = as_text(hostile)
        assert "\n" not in shown
        assert not re.search(r"(?<!\\)[\[\]!*`$<>]", shown), shown  # every sign escaped
        assert shown.replace("\\", "").replace("\u2060", "") == " ".join(hostile.split())  # the same characters
    assert "://" not in as_text("http://example.invalid") and "www." not in as_text("www.example.invalid")
    assert html_text("a\n\n![x](y) <img>") == "a ![x](y) &lt;img&gt;"  # one line: the HTML block goes on
