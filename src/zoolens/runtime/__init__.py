"""What training and prediction both run on: the network engines (ONNX Runtime, PyTorch), photo decoding for the
network, the feature cache, and the processes of a multi-device run. Below training and inference, which both
use it."""
