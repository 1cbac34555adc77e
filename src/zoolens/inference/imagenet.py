"""ImageNet classification out of the box: the pretrained network's own 1000 classes, no training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoolens.data.images import open_image
from zoolens.data.transforms import eval_transform
from zoolens.errors import ImageError
from zoolens.inference.model import Prediction
from zoolens.models.backbones import DEFAULT_BACKBONE, build_imagenet_classifier, describe_backbone
from zoolens.training.features import make_engine

# ImageNet class indices of dog breeds (the seeds' dog detector: 151-268 inclusive).
DOG_CLASSES = range(151, 269)


def imagenet_categories() -> list[str]:
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


class ImageNetClassifier:
    def __init__(self, backbone: str = DEFAULT_BACKBONE):
        network, self.preprocessing = build_imagenet_classifier(backbone)
        key = "imagenet-" + describe_backbone(backbone).weights_id.replace(":", "-")
        self.engine = make_engine(network, key, self.preprocessing.input_size)
        self.transform = eval_transform(self.preprocessing)
        self.categories = imagenet_categories()

    def probabilities(self, images) -> np.ndarray:
        import torch

        batch = torch.stack([self.transform(image) for image in images]).numpy()
        logits = self.engine(batch)
        logits = logits - logits.max(1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(1, keepdims=True)

    def predict(self, inputs, top_k: int = 5, batch_size: int = 32) -> list[Prediction]:
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        results: list[Prediction] = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            images, positions, chunk_results = [], [], []
            for item in chunk:
                source = str(item) if isinstance(item, (str, Path)) else getattr(item, "filename", "<image>")
                try:
                    images.append(open_image(item if not isinstance(item, str) else Path(item), min_side=256))
                    positions.append(len(chunk_results))
                    chunk_results.append(Prediction(source, None, 0.0))
                except ImageError as error:
                    chunk_results.append(Prediction(source, None, 0.0, error=error.reason))
            if images:
                for position, row in zip(positions, self.probabilities(images)):
                    order = np.argsort(-row)[:top_k]
                    top = [(self.categories[i], float(row[i])) for i in order]
                    chunk_results[position].label, chunk_results[position].confidence = top[0]
                    chunk_results[position].top = top
            results.extend(chunk_results)
        return results
