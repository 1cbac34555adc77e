"""What a model folder's zoolens.json may hold: every field is untrusted input, checked before anything is built.

`problem(meta)` is None for a valid description, else one line naming the first bad field
(`preprocessing.std[1]: must be more than 0, not 0`). Limits are generous for real models and refuse what
would build nonsense (a temperature of -1), exhaust memory (10^6 classes) or crash later (`training.seconds: "x"`).
"""

from __future__ import annotations

import math
import reprlib

from jsonschema import Draft202012Validator, ValidationError, validators

MAX_META_BYTES = 10 * 1024 * 1024  # zoolens.json files larger than this are refused unread
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 1000  # characters
INPUT_SIZE = (16, 1024)  # pixels, the network's square input
RESIZE_SIZE = (16, 2048)  # pixels, the shorter side before the centre crop; also >= input_size
TEMPERATURE = (0.01, 100.0)  # calibration; training fits it within exp(+-2)
MEAN = (-10.0, 10.0)
STD = (1e-3, 100.0)


def _number(minimum=None, maximum=None, *, nullable=False, integer=False, exclusive_maximum=None) -> dict:
    schema = {"type": ["integer" if integer else "number"] + (["null"] if nullable else []), "finite": True}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if exclusive_maximum is not None:
        schema["exclusiveMaximum"] = exclusive_maximum
    return schema


def _triple(low: float, high: float) -> dict:
    return {"type": "array", "minItems": 3, "maxItems": 3, "items": _number(low, high)}


STRING = {"type": "string", "maxLength": 10_000}
OPTIONAL_STRING = {"type": ["string", "null"], "maxLength": 10_000}
COUNT = _number(0, integer=True, nullable=True)
SHARE = _number(0, 1, nullable=True)
PREPROCESSING = {
    "type": "object", "required": ["input_size", "resize_size", "mean", "std"],
    "properties": {"input_size": _number(*INPUT_SIZE, integer=True),
                   "resize_size": _number(*RESIZE_SIZE, integer=True),
                   "mean": _triple(*MEAN), "std": _triple(*STD)},
}
BACKBONE_FACTS = {"name": {"type": "string", "minLength": 1, "maxLength": 200}, "source": STRING,
                  "weights_tag": STRING, "feature_dim": _number(1, integer=True)}
# Keys in schema order: each field's type is checked before its bounds, a list's items before their uniqueness.
SCHEMA = {
    "type": "object",
    "required": ["format", "classes", "backbone", "preprocessing"],
    "properties": {
        "format": STRING,
        "format_version": _number(0, integer=True),
        "zoolens_version": STRING,
        "created": STRING,
        "classes": {
            "type": "array", "minItems": 1, "maxItems": MAX_CLASSES,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_CLASS_NAME},
            "uniqueItems": True,
        },
        "class_names": {  # what people read for each class, in the order of `classes`
            "type": "array", "maxItems": MAX_CLASSES,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_CLASS_NAME},
        },
        "backbone": {
            "type": "object", "required": ["name"],
            "properties": {**BACKBONE_FACTS,
                           "members": {  # an ensemble's ("mobilenet_v2+efficientnet_lite2"), in order
                               "type": "array", "minItems": 2, "maxItems": 16,
                               "items": {"type": "object", "required": ["name", "feature_dim", "preprocessing"],
                                         "properties": {**BACKBONE_FACTS, "preprocessing": PREPROCESSING}}}},
        },
        "preprocessing": PREPROCESSING,
        "head": {"type": "object", "properties": {"dropout": _number(0, exclusive_maximum=1)}},
        "calibration": {"type": "object",
                        "properties": {"temperature": _number(*TEMPERATURE), "fitted_on": STRING}},
        "parameters": _number(0, integer=True),
        # Recorded facts that `report`, `evaluate` and `export --check` format or use: their types, loosely.
        "training": {
            "type": "object",
            "properties": {
                "seconds": _number(0), "epochs_run": COUNT, "processes": COUNT,
                **{key: COUNT for key in ("epochs", "batch_size", "patience", "seed", "image_size", "head_epochs",
                                          "unfreeze", "num_nodes", "workers")},
                **{key: _number(0, nullable=True) for key in ("lr", "weight_decay")},
                **{key: SHARE for key in ("dropout", "label_smoothing", "open_set_share")},
                **{key: OPTIONAL_STRING for key in ("backbone", "strategy", "optimizer", "ratios", "accelerator",
                                                     "balance")},
                "augmentation": {"type": ["object", "null"]},
                "phases": {"type": "array", "maxItems": 16, "items": {
                    "type": "object", "properties": {"name": OPTIONAL_STRING, "on": OPTIONAL_STRING,
                                                     "lr": _number(0), "epochs": COUNT, "patience": COUNT,
                                                     "unfreeze": COUNT, "learns_batchnorm": {"type": "boolean"},
                                                     "must_beat_start": {"type": "boolean"}}}},
            },
        },
        "data": {"type": "object", "properties": {
            "root": OPTIONAL_STRING, "counts": {"type": "object"}, "skipped": {"type": "array"},
            "corrections": {"type": ["object", "null"], "properties": {
                "file": OPTIONAL_STRING, "sha256": OPTIONAL_STRING,
                **{key: COUNT for key in ("relabelled", "excluded", "kept")}}}}},
        "metrics": {
            "type": "object",
            "properties": {
                **{key: {"type": ["number", "null"]} for key in (
                    "accuracy", "loss", "images", "precision_macro", "recall_macro", "f1_macro",
                    "precision_weighted", "recall_weighted", "f1_weighted")},
                "evaluated_on": STRING,
                "per_class": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {k: {"type": "number"}
                                                     for k in ("precision", "recall", "f1-score", "support")}}},
                "confusion_matrix": {"type": "array", "maxItems": MAX_CLASSES,
                                     "items": {"type": "array", "items": {"type": "number"}}},
                "answers": {"type": "object"},
            },
        },
        "open_set": {"type": "object"},
    },
}


def _finite(validator, wanted, instance, schema):
    if wanted and validator.is_type(instance, "number") and not math.isfinite(instance):
        yield ValidationError(f"must be a finite number, not {instance}")


Validator = validators.extend(Draft202012Validator, {"finite": _finite})
_validator = Validator(SCHEMA)

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 40, 40, 4, 4, 2
_TYPES = {"object": "an object", "array": "a list", "string": "a string", "integer": "a whole number",
          "number": "a number", "null": "null"}


def _field(path) -> str:
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.isidentifier() or part.replace("-", "_").isidentifier():
            name += f".{part}" if name else part
        else:
            name += f"[{_short.repr(part)}]"
    return name or "the whole file"


def _describe(error: ValidationError) -> str:
    kind, wanted, instance = error.validator, error.validator_value, error.instance
    value = _short.repr(instance)
    path = list(error.absolute_path)
    if kind == "required":
        missing = next(key for key in wanted if key not in instance)
        return f"{_field(path)}: missing {missing!r}" if path else f"missing {missing!r}"
    if kind == "type":
        types = [wanted] if isinstance(wanted, str) else wanted
        text = f"must be {' or '.join(_TYPES.get(t, t) for t in types)}, not {value}"
    elif kind in ("minimum", "maximum", "exclusiveMaximum", "exclusiveMinimum"):
        text = {"minimum": "at least", "maximum": "at most", "exclusiveMaximum": "less than",
                "exclusiveMinimum": "more than"}[kind]
        text = f"must be {text} {wanted}, not {value}"
    elif kind in ("minItems", "maxItems"):
        text = f"must have {'at least' if kind == 'minItems' else 'at most'} {wanted:,} items, not {len(instance):,}"
    elif kind in ("minLength", "maxLength"):
        text = f"must be {'at least' if kind == 'minLength' else 'at most'} {wanted:,} characters long"
    elif kind == "uniqueItems":
        seen, repeated = set(), None
        for item in instance:
            if item in seen:
                repeated = item
                break
            seen.add(item)
        text = f"must not repeat a value ({_short.repr(repeated)} is there twice)"
    else:  # "finite", and any keyword added later: its message, kept to one line
        text = " ".join(error.message.split())[:200]
    return f"{_field(path)}: {text}"


def problem(meta) -> str | None:
    """The first thing wrong with a parsed zoolens.json, as 'field: what is wrong', or None."""
    try:
        error = next(_validator.iter_errors(meta), None)
        if error is not None:
            return _describe(error)
    except RecursionError:
        return "the whole file: nested too deeply"
    prep = meta["preprocessing"]
    if prep["resize_size"] < prep["input_size"]:
        return (f"preprocessing.resize_size: must be at least input_size ({prep['input_size']}), "
                f"not {prep['resize_size']}")
    return None
