"""`--engine ray`: the batch job's decoding and network on Ray Data, on a local cluster (`ray.init()`) or a
running one (`--ray-address ray://host:10001`). The walk, the resume bookkeeping and the Parquet parts stay
in this process (`zoolens.inference.batch`); Ray only turns photo paths into the backbone's pooled features.

The photos are read by the Ray workers, so on a remote cluster they must be at the same path on its nodes
(shared storage), and the cluster's Python needs zoolens (`pip install 'zoolens[scale]'`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from zoolens.choices import DEFAULT_OPEN_SET
from zoolens.data.camera_trap import CaptureTime
from zoolens.errors import ZoolensError, missing_extra, setting
from zoolens.inference.batch.local import NETWORK_BATCH, NOT_READ, decode_frame
from zoolens.inference.batch.walk import Found, in_groups
from zoolens.inference.model import Model
from zoolens.inference.prediction import failed, open_input
from zoolens.models.faces import PERSON_MIN_SIDE

# Photos per Ray Dataset: each starts its own pool of model replicas, so not too few; the paths of one
# wave are all this process holds.
CHUNKS_PER_WAVE = 32
DEFAULT_CONCURRENCY = 2


class OnnxFeatures:
    """One backbone replica on a Ray worker under ONNX Runtime: photo paths in, pooled features out (the head
    and the open-set check run in the driver, through the same `Model.predict_features` as everywhere)."""

    def __init__(self, onnx_model: tuple, preprocessing: dict, feature_dim: int):
        import onnxruntime as ort
        import ray

        from zoolens.data.transforms import Preprocessing

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # The model's backbone, and the pretrained one its open-set check runs on when that is another.
        self.sessions = [ort.InferenceSession(network, options, providers=["CPUExecutionProvider"])
                         for network in ray.get(onnx_model[0])]
        self.preprocessing = Preprocessing.from_dict(preprocessing)
        self.feature_dim = feature_dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = [decode_frame(Path(os.fsdecode(bytes(path))), self.preprocessing) for path in batch["path"]]
        usable = [i for i, (pixels, _, _) in enumerate(decoded) if pixels is not None]
        features = np.zeros((len(decoded), self.feature_dim), np.float32)
        if usable:
            images = np.stack([decoded[i][0] for i in usable])
            features[usable] = np.concatenate([session.run(None, {session.get_inputs()[0].name: images})[0]
                                               for session in self.sessions], axis=1)
        times = [time for _, _, time in decoded]
        return {"index": batch["index"], "features": features,
                "error": np.array([problem for _, problem, _ in decoded], dtype=object),
                # the capture time read from the photo as it was opened, as text (Ray's columns are arrays)
                "time_read": np.array([time.text for time in times], dtype=object),
                "time": np.array([time.time.isoformat() if time.time else "" for time in times], dtype=object),
                "time_problem": np.array([time.problem for time in times], dtype=object)}


def _start_ray(address: str | None):
    try:
        import ray
        import ray.data
        import ray.util.client  # is_connected(): whether this is a Ray Client (ray://) session
    except ImportError:
        raise missing_extra("ray", "scale", f"{setting('engine')} ray") from None
    ray.data.DataContext.get_current().enable_progress_bars = False  # zoolens shows its own
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no execution plans or notices on stderr
    if ray.is_initialized():  # started by the caller (Python API): theirs to shut down
        return ray, False
    # No address: a new local cluster ("local"), never whatever /tmp/ray last recorded, which may be dead;
    # RAY_ADDRESS (set for `ray job submit` drivers) names the cluster otherwise.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ZoolensError(f"Ray cluster {address or '(local)'}: {str(error).splitlines()[0][:160]}") from None
    return ray, True


def exported_backbones(model: Model) -> list[bytes]:
    """The model's backbones as ONNX (the files its feature engines already run, exported once and cached)."""
    from zoolens.runtime.features import make_engine

    return [make_engine(network, "onnx").path.read_bytes() for network in model.feature_networks]


def run_wave(items: list[dict], onnx_model: tuple, preprocessing: dict, feature_dim: int,
             concurrency: int) -> list[tuple]:
    """(index, features, problem, capture time) for each {"index", "path"} item: one Ray Dataset over backbone
    replicas."""
    import ray.data

    dataset = ray.data.from_items(items).map_batches(
        OnnxFeatures,
        fn_constructor_kwargs={"onnx_model": onnx_model, "preprocessing": preprocessing, "feature_dim": feature_dim},
        batch_size=NETWORK_BATCH,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
    )
    outcomes = []
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        times = [CaptureTime(text, datetime.fromisoformat(time) if time else None, problem) for text, time, problem
                 in zip(batch["time_read"].tolist(), batch["time"].tolist(), batch["time_problem"].tolist())]
        outcomes.extend(zip(batch["index"].tolist(), batch["features"], batch["error"].tolist(), times))
    return outcomes


def _wave_outcomes(ray, found: list[Found], onnx_model, preprocessing: dict, feature_dim: int,
                   concurrency: int) -> list[tuple]:
    """(position in `found`, features, problem, capture time) for each photo of the wave that the walk could see."""
    items = [{"index": i, "path": os.fsencode(item.path)} for i, item in enumerate(found) if item.problem is None]
    if not items:
        return []
    # The model went once into the object store; wrapped in a tuple, its reference reaches each replica
    # as is, and the replica fetches the bytes itself.
    arguments = (items, (onnx_model,), preprocessing, feature_dim, concurrency)
    if ray.util.client.ray.is_connected():
        # Through Ray Client (ray://) the driver has no core worker and Ray Data cannot execute there, so
        # the wave is driven by a task on the cluster (no CPU of its own: the replicas need them).
        return ray.get(ray.remote(num_cpus=0)(run_wave).remote(*arguments))
    return run_wave(*arguments)


def ray_predictions(model: Model, chunks: Iterator[list[Found]], top_k: int, min_confidence: float,
                    address: str | None = None, concurrency: int | None = None, open_set: str = DEFAULT_OPEN_SET):
    """(chunk, its predictions, its capture times) for each chunk, as `batch.local_predictions` gives them."""
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:  # everything already done: no cluster to start or reach
        return
    chunks = itertools.chain([first], chunks)
    ray, started_here = _start_ray(address)
    try:
        onnx_model = ray.put(exported_backbones(model))
        preprocessing = model.preprocessing.to_dict()
        feature_dim = model.feature_width
        for wave in in_groups(chunks, CHUNKS_PER_WAVE):
            found = [item for chunk in wave for item in chunk]
            outcomes = {i: (features, problem, time) for i, features, problem, time
                        in _wave_outcomes(ray, found, onnx_model, preprocessing, feature_dim,
                                          concurrency or DEFAULT_CONCURRENCY)}
            position = 0
            for chunk in wave:
                results = [outcomes.get(position + n, (None, item.problem or "unusable", NOT_READ))
                           for n, item in enumerate(chunk)]
                position += len(chunk)
                usable = [n for n, (_, problem, _) in enumerate(results) if not problem]
                features = np.stack([results[n][0] for n in usable]) if usable else np.zeros((0, feature_dim))
                answers = iter(model.predict_features([str(chunk[n].path) for n in usable], features, top_k,
                                                      min_confidence, open_set,
                                                      image_of=lambda j, usable=usable, chunk=chunk:
                                                      open_input(chunk[usable[j]].path, PERSON_MIN_SIDE)))
                yield (chunk, [next(answers) if not problem else failed(str(item.path), problem)
                               for item, (_, problem, _) in zip(chunk, results)], [time for _, _, time in results])
    finally:
        if started_here:
            ray.shutdown()
