"""`zoolens export`: the whole classifier as one ONNX file, for deployment without PyTorch or zoolens.

The file takes a batch of normalised images (N, 3, S, S) and returns calibrated class probabilities
(N, C); its metadata holds the class names and the preprocessing as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoolens.data.folders import Sample
from zoolens.data.images import open_image
from zoolens.data.transforms import preprocess_array
from zoolens.errors import ImageError, ZoolensError
from zoolens.files import replaced_atomically
from zoolens.runtime.features import write_onnx


class _CalibratedClassifier(nn.Module):
    def __init__(self, network: nn.Module, temperature: float):
        super().__init__()
        self.network = network
        self.temperature = temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(images) / self.temperature, dim=1)


@dataclass
class ExportCheck:
    images: int
    same_top1: int
    max_probability_difference: float


def export_onnx(model, out: str | Path) -> Path:
    out = Path(out)
    size = model.preprocessing.input_size
    with replaced_atomically(out) as partial:
        write_onnx(_CalibratedClassifier(model.network.eval(), model.temperature), partial, size, "probabilities")
        _add_metadata(partial, model)
    return out


def _add_metadata(path: Path, model) -> None:
    import onnx

    proto = onnx.load(str(path))
    facts = {
        "classes": json.dumps(model.classes),
        "preprocessing": json.dumps(model.preprocessing.to_dict()),
        "backbone": model.network.backbone.info.name,
        "producer": "zoolens",
    }
    for key, value in facts.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def check_export(model, onnx_path: Path, samples: list[Sample], batch_size: int = 32) -> ExportCheck:
    """Run the exported file and the PyTorch network on the same photos; compare their answers."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    same, worst, counted = 0, 0.0, 0
    for start in range(0, len(samples), batch_size):
        batch = []
        for sample in samples[start : start + batch_size]:
            try:
                batch.append(preprocess_array(open_image(sample.path), model.preprocessing))
            except ImageError:
                continue
        if not batch:
            continue
        images = np.stack(batch)
        exported = session.run(None, {"images": images})[0]
        with torch.inference_mode():
            reference = torch.softmax(model.network.eval()(torch.from_numpy(images)) / model.temperature, 1).numpy()
        same += int((exported.argmax(1) == reference.argmax(1)).sum())
        worst = max(worst, float(np.abs(exported - reference).max()))
        counted += len(batch)
    if not counted:
        raise ZoolensError("no usable photos to check the exported model on")
    return ExportCheck(counted, same, worst)
