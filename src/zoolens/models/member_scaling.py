"""How a head reads an ensemble's features ("mobilenet_v2+efficientnet_lite2"): each member's features scaled to one
length, so that no member outweighs the others by the scale of its features. NumPy only: every answer goes through it.

Measured on Imagewoof (MobileNetV2 + EfficientNet-Lite2, both at 260 px, one head; docs/measurements.md): the
features as they are 93.67 %, each member L2-normalised to length 1 94.47 %, 3 94.20 %, 10 93.93 %, 35.8 94.00 %.
Length 1 leaves a head trained on a small, easy set unsure of everything (a mean confidence of 59 % on 90 animals3
photos it answers all right, where the temperature cannot be fitted: no validation photo is wrong); 3 gives 83 %.
"""

from __future__ import annotations

import numpy as np

MEMBER_LENGTH = 3.0


def normalised_members(features: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """`features` (N, sum of widths) with each member's columns scaled to MEMBER_LENGTH (L2); one backbone's
    (`widths` of one or none) unchanged."""
    if len(widths) < 2:
        return features
    ends = np.cumsum(widths)[:-1]
    return np.concatenate([part * (MEMBER_LENGTH / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12))
                           for part in np.split(features, ends, axis=1)], axis=1)
