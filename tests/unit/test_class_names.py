"""Class folders named by an id are shown by a name people read (ImageNet WordNet ids automatically, any dataset
through a names.csv or classes.json), everywhere a person looks; the id stays beside it in tables for machines.
The tests that train or start processes: tests/integration/test_class_names_surfaces.py."""

from __future__ import annotations

import json

import pytest

from zoolens.data.class_names import readable_names, wordnet_name
from zoolens.errors import ZoolensError

# Three of Imagewoof's classes, as the shared datasets' README names them.
BREEDS = {"n02088364": "beagle", "n02099601": "golden retriever", "n02111889": "Samoyed"}


def make_classes(root, classes):
    for name in classes:
        (root / name).mkdir(parents=True)
    return root


def test_imagenet_ids_get_their_names_and_other_folders_keep_theirs(tmp_path):
    root = make_classes(tmp_path, [*BREEDS, "cats"])
    assert readable_names(root, [*BREEDS, "cats", "n99999999"]) == {**BREEDS, "cats": "cats",
                                                                    "n99999999": "n99999999"}  # not a synset


def test_a_names_file_beside_the_class_folders_names_them(tmp_path):
    (tmp_path / "names.csv").write_text("class,name\nc1,red fox\nc2,  Arctic   fox \nunused,x\n", encoding="utf-8")
    assert readable_names(tmp_path, ["c1", "c2", "c3"]) == {"c1": "red fox", "c2": "Arctic fox", "c3": "c3"}
    (tmp_path / "names.csv").unlink()
    (tmp_path / "classes.json").write_text(json.dumps({"n02099601": "goldie"}), encoding="utf-8")
    assert readable_names(tmp_path, ["n02099601", "n02088364"]) == {"n02099601": "goldie", "n02088364": "beagle"}


def test_two_classes_never_share_a_name(tmp_path):
    assert wordnet_name("n02012849") == wordnet_name("n03126707") == "crane"  # the bird and the machine
    assert readable_names(tmp_path, ["n02012849", "n03126707"]) == {"n02012849": "crane (n02012849)",
                                                                   "n03126707": "crane (n03126707)"}


@pytest.mark.parametrize("file_name, text, problem", [
    ("names.csv", "id,label\nc1,fox\n", "needs a header with the columns class and name"),
    ("names.csv", "class,name\nc1,\n", "the name of 'c1' must be text of 1 to 200 characters"),
    ("classes.json", "[1, 2]", "must be one JSON object of class: name"),
    ("classes.json", "{nope", "not valid JSON"),
])
def test_a_names_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, file_name, text, problem):
    (tmp_path / file_name).write_text(text, encoding="utf-8")
    with pytest.raises(ZoolensError) as error:
        readable_names(tmp_path, ["c1"])
    assert str(error.value).startswith(f"{tmp_path / file_name}: ") and problem in str(error.value)
