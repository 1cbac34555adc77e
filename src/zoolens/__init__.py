"""zoolens: from a folder of labelled animal photos to an accurate, explainable classifier.

    import zoolens
    zoolens.list_backbones()                               # the backbones, and whether their weights are here
    model = zoolens.train("photos/", "my-model")          # class folders in, a saved, evaluated model out
    model = zoolens.Model.load("my-model")
    for p in model.predict(["cat.jpg"], top_k=3, min_confidence=0.6):
        print(p.answer, p.confidence, p.top)

The public names (each imported on first use, so `import zoolens` loads no PyTorch or NumPy):

    train, TrainConfig             train a model from photos; its settings
    Callback                       what train(callbacks=[...]) is given: told each step (split, features, training,
                                   calibration, open-set check, evaluation, save) and each epoch's history row
    Model                          a trained model: Model.load(folder), .predict(photos), .classes
    ImageNetClassifier             the pretrained network's 1000 ImageNet classes, no training
    Predictor                      what Model, ImageNetClassifier and the dog-breed app are: `.classes`,
                                   `.predict(photos, top_k=3, min_confidence=0.0)` -> one Prediction per photo
    Prediction                     one photo's answer: a class, "not sure", "none of these" or an error
    list_backbones, BackboneRecord the declared backbones: source, input size, width, whether weights are here
    evaluate                       a model measured on a folder of labelled photos
    scan_folder, split_folder, inspect_folder    a dataset read, split, summarised
    export_results                 a camera-trap results folder as spreadsheets and a season report
    ZoolensError                   the one error zoolens raises for bad input, with a one-line message
"""

__version__ = "0.1.0"

_EXPORTS = {
    "train": "zoolens.training.trainer",
    "TrainConfig": "zoolens.training.config",
    "Callback": "zoolens.training.run",
    "Model": "zoolens.inference.model",
    "Prediction": "zoolens.inference.prediction",
    "Predictor": "zoolens.inference.predictor",
    "ImageNetClassifier": "zoolens.inference.imagenet",
    "list_backbones": "zoolens.models.registry",
    "BackboneRecord": "zoolens.models.registry",
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


def __dir__():
    # The public names are not module globals until first used: without this, dir() shows only sub-modules.
    return sorted(set(__all__) | set(globals()))
