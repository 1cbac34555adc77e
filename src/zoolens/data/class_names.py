"""Names people can read for class folders named by an id: ImageNet-style WordNet ids (`n02099601` is "golden
retriever") get their names automatically, and any dataset can give its own in a `names.csv` (columns `class` and
`name`) or a `classes.json` (`{"class": "name", ...}`) beside its class folders. The ids stay the model's classes
(and the `label` of every table); the names are what people are shown."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from zoolens.errors import ZoolensError

NAMES_FILES = ("names.csv", "classes.json")
WORDNET_ID = re.compile(r"n\d{8}")
MAX_NAMES_BYTES = 16 * 1024 * 1024  # a names file is text: a few hundred KB for all of ImageNet-21k
MAX_NAME_LENGTH = 200


def readable_names(root: Path, classes: list[str]) -> dict[str, str]:
    """A name for each class: the dataset's names file, else the WordNet name of an ImageNet id, else the folder's
    own name. Two classes never share a name (`distinct_names`)."""
    given = names_file_entries(root)
    return distinct_names({c: given.get(c) or wordnet_name(c) or c for c in classes})


def distinct_names(names: dict[str, str]) -> dict[str, str]:
    """{class: name} where no two names read the same: names that do (Unicode forms and invisible characters aside)
    get their class id after them, "Dog (cats)" and "Dog (dogs)"; a class shown as its own id keeps it. A name
    that then reads like another's new one ("Dog (cats)" given to panda) gets its id too: "Dog (cats) (panda)"."""
    shown, suffixed = dict(names), set()
    for _ in range(len(shown) + 1):  # two rounds settle any names file; the bound is for hostile ids
        groups: dict[str, list[str]] = {}
        for label, name in shown.items():
            groups.setdefault(_reads_as(name), []).append(label)
        clashing = [[label for label in group if shown[label] != label] for group in groups.values() if len(group) > 1]
        if not any(clashing):
            break
        for group in clashing:
            for label in [label for label in group if label not in suffixed] or group:
                shown[label] = f"{shown[label]} ({label})"
                suffixed.add(label)
    return shown


def _reads_as(name: str) -> str:
    """What a name looks like on screen: its NFKC form without invisible (format) characters."""
    return "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf")


def names_file_entries(root: Path) -> dict[str, str]:
    """{class: name} from the first names file in `root`; {} without one. A names file that cannot be read is one
    error naming it and the problem."""
    for file_name in NAMES_FILES:
        path = root / file_name
        if path.is_file():
            return _checked(path, _read_entries(path))
    return {}


def _read_entries(path: Path) -> dict:
    if path.stat().st_size > MAX_NAMES_BYTES:
        raise ZoolensError(f"{path}: too large for a names file ({path.stat().st_size} bytes)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not UTF-8 text") from None
    if path.suffix == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise ZoolensError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
        if not isinstance(entries, dict):
            raise ZoolensError(f'{path}: must be one JSON object of class: name ({{"n02099601": "golden retriever"}})')
        return entries
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"class", "name"} <= set(rows[0]):
        raise ZoolensError(f"{path}: needs a header with the columns class and name")
    return {row["class"]: row["name"] for row in rows}


def _checked(path: Path, entries: dict) -> dict[str, str]:
    for key, name in entries.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise ZoolensError(f"{path}: the name of {key!r} must be text of 1 to {MAX_NAME_LENGTH} characters")
    return {str(key): " ".join(name.split()) for key, name in entries.items()}


def wordnet_name(label: str) -> str | None:
    """The ImageNet name of a WordNet id (its first lemma), None for anything else."""
    return _wordnet_lemmas().get(label) if WORDNET_ID.fullmatch(label) else None


@lru_cache(maxsize=1)
def _wordnet_lemmas() -> dict[str, str]:
    """ImageNet-21k's synset -> lemma table, as timm ships it (found without importing timm, which loads PyTorch);
    empty when timm is not installed."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(spec.submodule_search_locations[0]) / "data" / "_info" / "imagenet_synset_to_lemma.txt"
    if not path.is_file():
        return {}
    lemmas = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        synset, _, lemma = line.partition("\t")
        if lemma:
            lemmas[synset] = lemma.split(",")[0].strip()
    return lemmas
