"""The dense head on cached features in NumPy, by the names the trainer and the tests know it: it lives in
`models.dense_head`, below evaluation, so that `zoolens data issues` fits its out-of-fold heads with the same head,
loss, optimizer and epoch loop as `zoolens train` (`fit_dense_head`)."""

from zoolens.models.dense_head import (
    OPTIMIZERS,
    AdamW,
    CrossEntropy,
    DenseHead,
    FeatureBatches,
    HeadSettings,
    Loss,
    NesterovSGD,
    NumpyDevice,
    Optimizer,
    Parameter,
    RMSprop,
    fit_dense_head,
)

__all__ = ["OPTIMIZERS", "AdamW", "CrossEntropy", "DenseHead", "FeatureBatches", "HeadSettings", "Loss", "NesterovSGD",
           "NumpyDevice", "Optimizer", "Parameter", "RMSprop", "fit_dense_head"]
