"""zoolens: from a folder of labelled animal photos to an accurate, explainable classifier.

    import zoolens
    model = zoolens.train("photos/", "my-model")          # class folders in, a saved model out
    print(model.evaluation.accuracy)
    model = zoolens.Model.load("my-model")
    for p in model.predict(["cat.jpg"], top_k=3, min_confidence=0.6):
        print(p.answer, p.confidence, p.top)
"""

__version__ = "0.1.0"

_EXPORTS = {
    "train": "zoolens.training.trainer",
    "TrainConfig": "zoolens.training.config",
    "Model": "zoolens.inference.model",
    "Prediction": "zoolens.inference.model",
    "ImageNetClassifier": "zoolens.inference.imagenet",
    "evaluate": "zoolens.evaluation.evaluate",
    "scan_folder": "zoolens.data.folders",
    "split_folder": "zoolens.data.split",
    "inspect_folder": "zoolens.data.inspect",
    "ZoolensError": "zoolens.errors",
    "export_results": "zoolens.evaluation.camera_trap_report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    # Lazy, so `import zoolens` and `zoolens --help` stay fast (torch loads only when needed).
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zoolens' has no attribute {name!r}")
