"""Frozen "bottleneck" features: computed once per photo and backbone, cached on disk by file content.

The network runs under ONNX Runtime when it can (about 4x PyTorch eager on a 2-core CPU, measured),
with photos decoded in worker processes while the network works. A backbone is exported to ONNX once per machine
(checked against PyTorch's output), into the cache; from then on computing its features needs no PyTorch: this
module imports it only to export, or where ONNX Runtime cannot run a network.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import stat
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoolens.data.images import file_digest
from zoolens.data.transforms import Preprocessing, network_pixels, normalised
from zoolens.errors import ImageError, ZoolensError
from zoolens.files import open_cache_database, replaced_atomically, write_to_cache
from zoolens.progress import progress_bar

if TYPE_CHECKING:
    import torch

    from zoolens.models.available import BackboneInfo
    from zoolens.models.backbones import Backbone
    from zoolens.runtime.distributed import Processes
    from zoolens.runtime.pretrained_kit import PretrainedKit

FEATURE_FORMAT_VERSION = 2  # 2: resize on the PIL image before converting to a tensor
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("ZOOLENS_CACHE", Path.home() / ".cache" / "zoolens"))


def backbone_key(backbone: Backbone, prep: Preprocessing) -> str:
    """Identifies what the features are a function of: the backbone's weights and the preprocessing."""
    if backbone.info.weights_tag != "none":
        return feature_key(backbone.info.weights_id, prep)
    state = {name: tensor.detach().cpu().contiguous().numpy() for name, tensor in backbone.state_dict().items()}
    return feature_key(weights_fingerprint(state), prep)


def feature_key(weights: str, prep: Preprocessing) -> str:
    """The key of features computed by the weights `weights` names (a pretrained id, or `weights_fingerprint`)."""
    text = json.dumps([FEATURE_FORMAT_VERSION, weights, prep.to_dict()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def weights_fingerprint(state: Mapping[str, np.ndarray]) -> str:
    """A short content hash of a network's weights, by name (sorted: a model file does not keep PyTorch's order),
    the same from a PyTorch module's state as from a model file read with NumPy."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(state[name]).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FeatureExtractor:
    """One backbone's pooled features, as training and every answer take them (timm's `forward_features` with its
    `pretrained_cfg`): the key its features are cached under (and its ONNX file), their width, the preprocessing
    its photos go through, and its engines behind it, each made on first use: ONNX Runtime (exported once into the
    cache), or PyTorch (`build`, called only to export, where ONNX Runtime cannot run the network, or where something
    needs the module: Grad-CAM, fine-tuning); for a pretrained backbone, its cached kit (`kit`: its weights and
    ImageNet classifier as arrays, so that a frozen model trains and saves without PyTorch).

    An extractor of several backbones side by side is `runtime.extractor.CombinedExtractor`; both answer
    `features_of_paths`, `features_of_pixels`, `features_of_images`, `parts` and `members`."""

    key: str
    feature_dim: int
    preprocessing: Preprocessing
    build: Callable[[], Any] = field(compare=False, repr=False)  # the PyTorch module (models.backbones.Backbone)
    info: BackboneInfo | None = field(default=None, compare=False)  # which backbone, when it is one of the catalogue's
    kit: PretrainedKit | None = field(default=None, compare=False, repr=False)

    @property
    def input_size(self) -> int:
        return self.preprocessing.input_size

    @property
    def members(self) -> tuple[FeatureExtractor, ...]:
        return (self,)

    def parts(self, features: np.ndarray) -> list[np.ndarray]:
        """Its features per member: one backbone's are all of them."""
        return [features]

    def features_of_paths(self, paths: list[Path], progress: bool | None = False, batch_size: int = 32,
                          engine: str = "auto") -> FeatureSet:
        """Photo files' features, from the cache where it has them (`extract_features`, its `progress`)."""
        return extract_features([Path(p) for p in paths], self, self.preprocessing, batch_size, engine, progress)

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Photos already resized and cropped for it, 8-bit (N, S, S, 3) (`transforms.cropped_pixels`)."""
        return make_engine(self)(pixels)

    def features_of_images(self, images: list) -> np.ndarray:
        """Photos (paths, bytes or PIL images) as `transforms.network_pixels` makes them: the pixels of every answer."""
        return self.features_of_pixels(np.stack([network_pixels(image, self.preprocessing) for image in images]))

    def backbone(self):
        """The PyTorch module (built now if it was not)."""
        return self.build()

    def imagenet_head(self):
        """(its ImageNet classifier over these features as an `open_set.ImageNetHead`, None) or (None, why not): its
        kit's, without PyTorch, else the built backbone's."""
        if self.kit is not None:
            return self.kit.imagenet_head()
        from zoolens.models.backbones import imagenet_head

        return imagenet_head(self.backbone())

    def tensors(self) -> dict[str, np.ndarray]:
        """The backbone's weights by name as a `Classifier` holds them ("backbone.trunk..."): its kit's arrays, else
        the built module's."""
        if self.kit is not None:
            return self.kit.tensors()
        return {f"backbone.{name}": tensor.detach().cpu().contiguous().numpy()
                for name, tensor in self.backbone().state_dict().items()}

    def parameters(self) -> int:
        """Its trainable weights, counted as PyTorch counts a module's parameters."""
        if self.kit is not None:
            return self.kit.parameters
        return sum(p.numel() for p in self.backbone().parameters())


def extractor_of_backbone(backbone: Backbone | FeatureExtractor, prep: Preprocessing) -> FeatureExtractor:
    """The extractor of a PyTorch backbone already built, keyed by its weights (`backbone_key`)."""
    if isinstance(backbone, FeatureExtractor):
        return backbone
    return FeatureExtractor(backbone_key(backbone, prep), backbone.feature_dim, prep, lambda: backbone, backbone.info)



def onnx_path(key: str) -> Path:
    """The network of `key` as ONNX taking 8-bit pixels (see `pixels_to_features`)."""
    return cache_dir() / "onnx" / f"{key}-pixels.onnx"


def _onnx_threads() -> int:
    """Every core; in a multi-process run, the share Lightning gave this process (torch's thread count)."""
    if "torch" in sys.modules:
        from zoolens.runtime.distributed import in_process_group

        if in_process_group():
            return sys.modules["torch"].get_num_threads()
    return os.cpu_count() or 1


# Photos per run of the network: measured on this 2-core CPU, MobileNetV2 from 8-bit pixels, 366 images/s in runs
# of 8, 342 of 16, 314 of 32 (ONNX Runtime's working set stays in the caches).
ENGINE_BATCH = 8


class OnnxEngine:
    """The backbone exported to ONNX once (cached by key) and run with ONNX Runtime, on 8-bit pixels (N, S, S, 3):
    scaling, normalising and the channel order are done in the graph. Measured on this 2-core CPU (MobileNetV2,
    runs of 8): 366 images/s, against 287 for the same network fed float32 input normalised with NumPy."""

    def __init__(self, network: FeatureExtractor):
        import onnxruntime as ort

        path = self.path = onnx_path(network.key)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _onnx_threads()
        options.log_severity_level = 3
        # ONNX Runtime's threads spin for a while after each run; on 2 cores they then starve the NumPy products
        # that follow (the head and the open-set check). benchmarks/predict_latency.py, one session: a 256-px
        # photo p50 / p95 11.8 / 24.0 ms spinning, 7.3 / 8.8 ms not.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = None
        if path.exists():
            session, problem = checked_session(path, options, network)
            if problem:
                log.warning("%s: %s; exported again", path, problem)
        if session is None:
            export_checked(network.build(), path, network.preprocessing, network.key)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.session = session
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        return np.concatenate([self.session.run(None, {self.input_name: pixels[start : start + ENGINE_BATCH]})[0]
                               for start in range(0, max(len(pixels), 1), ENGINE_BATCH)])


EXPORT_TOLERANCE = 1e-3  # largest difference from PyTorch's features allowed, relative to their largest magnitude
ONNX_KEY, ONNX_PROBE = "zoolens_key", "zoolens_probe"  # what an exported file records of itself (metadata_props)


def probe_pixels(size: int) -> np.ndarray:
    """A fixed batch of noise, (2, size, size, 3) 8-bit: what an export is checked on."""
    return np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)


def _differs(found: np.ndarray, expected: np.ndarray) -> float:
    """How far `found` is from `expected`, relative to EXPORT_TOLERANCE of their magnitude: over 1 is too far."""
    if found.shape != expected.shape or not np.isfinite(found).all():
        return np.inf
    return float(np.abs(found - expected).max()) / (EXPORT_TOLERANCE * max(float(np.abs(expected).max()), 1.0))


def checked_session(path: Path, options, network: FeatureExtractor):
    """(an ONNX Runtime session of the cached file, None) when it is this network's export and still gives, for the
    first probe photo, the features PyTorch gave at export (recorded in the file); else (None, why not). Costs
    one photo through the network, once per engine."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        recorded = session.get_modelmeta().custom_metadata_map
        if recorded.get(ONNX_KEY) != network.key:
            return None, "not this network's export (another network's, or an older zoolens's)"
        expected = np.frombuffer(base64.b64decode(recorded.get(ONNX_PROBE, "")), np.float32)
        found = session.run(None, {session.get_inputs()[0].name: probe_pixels(network.input_size)[:1]})[0]
    except Exception as error:  # whatever ONNX Runtime makes of a damaged file: it is exported again
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        return None, f"not an ONNX file ONNX Runtime can run ({reason})"
    # Flat: a network's output may have more axes than (N, features), as a detector's (N, anchors, values) has.
    if _differs(found.reshape(len(found), -1), expected.reshape(1, -1)) > 1 or expected.size != network.feature_dim:
        return None, "its features differ from those PyTorch gave when it was exported"
    return session, None


def pixels_to_features(module: torch.nn.Module, prep: Preprocessing) -> torch.nn.Module:
    """`module` behind the preprocessing's last steps: 8-bit (N, S, S, 3) pixels in, scaled, normalised and put
    channels first, as `transforms.normalised` does."""
    import torch

    std, mean = torch.tensor(prep.std).view(1, 3, 1, 1), torch.tensor(prep.mean).view(1, 3, 1, 1)

    class FromPixels(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = module.eval()
            self.register_buffer("scale", 1 / (255 * std))
            self.register_buffer("offset", -mean / std)

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.network(pixels.permute(0, 3, 1, 2).float() * self.scale + self.offset)

    return FromPixels().eval()


def export_checked(module: torch.nn.Module, path: Path, prep: Preprocessing, key: str) -> None:
    """`module` exported to ONNX at `path` behind `pixels_to_features`, kept only when ONNX Runtime's features for a
    fixed batch of noise match PyTorch's on the same pixels normalised (within EXPORT_TOLERANCE); otherwise nothing
    is written and ZoolensError says by how much they differ. The file records `key` and PyTorch's features of the
    first probe photo, so that a cached file is checked before it is used (`checked_session`)."""
    import onnx
    import onnxruntime as ort
    import torch

    size = prep.input_size
    with replaced_atomically(path) as partial:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            write_onnx(pixels_to_features(module, prep), partial, size, "outputs", dtype=torch.uint8,
                       channels_last=True)
        probe = probe_pixels(size)
        with torch.inference_mode():
            expected = module.eval()(torch.from_numpy(normalised(probe, prep))).numpy()
        exported_model = onnx.load(str(partial))
        for name, value in ((ONNX_KEY, key),
                            (ONNX_PROBE, base64.b64encode(expected[:1].astype(np.float32).tobytes()).decode())):
            entry = exported_model.metadata_props.add()
            entry.key, entry.value = name, value
        onnx.save(exported_model, str(partial))
        session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        exported = session.run(None, {session.get_inputs()[0].name: probe})[0]
        if _differs(exported, expected) > 1:
            difference = float(np.abs(exported - expected).max()) if exported.shape == expected.shape else np.inf
            raise ZoolensError(f"the ONNX export of this network differs from PyTorch's output by {difference:.3g}")


def write_onnx(module: torch.nn.Module, path: Path, input_size: int, output_name: str, dtype=None,
               channels_last: bool = False) -> None:
    """`module` as an ONNX file taking a batch of (3, input_size, input_size) images named "images" (or, with
    `channels_last`, (input_size, input_size, 3)); the one export setting for the feature engine and `zoolens
    export`."""
    import torch

    shape = (1, input_size, input_size, 3) if channels_last else (1, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (torch.zeros(shape, dtype=dtype or torch.float32),),
            str(path),
            input_names=["images"],
            output_names=[output_name],
            dynamic_axes={"images": {0: "batch"}, output_name: {0: "batch"}},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter handles every torchvision/timm CNN tried here
        )


class TorchEngine:
    """The PyTorch module itself, on the same 8-bit pixels as OnnxEngine."""

    def __init__(self, module: torch.nn.Module, prep: Preprocessing):
        self.module = module.eval()
        self.preprocessing = prep

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(normalised(pixels, self.preprocessing))).numpy()


_ENGINES: dict[tuple[str, str], object] = {}
_ENGINES_LOCK = threading.Lock()


def make_engine(network: FeatureExtractor, engine: str = "auto"):
    """An engine per (key, kind), reused across calls in one process."""
    key = network.key
    with _ENGINES_LOCK:
        if (key, engine) in _ENGINES:
            return _ENGINES[(key, engine)]
        built = None
        if engine in ("auto", "onnx"):
            try:
                built = OnnxEngine(network)
            except Exception as error:  # any export/runtime failure: PyTorch still gives the same numbers
                if engine == "onnx":
                    raise
                reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
                log.warning("ONNX Runtime unavailable for this network (%s); using PyTorch", reason)
        if built is None:
            built = TorchEngine(network.build(), network.preprocessing)
        _ENGINES[(key, engine)] = built
        return built


class FeatureCache:
    """content hash -> feature vector, in one SQLite file per backbone key (safe under concurrent use). A row is
    served only when it is whole (its checksum), `width` floats wide and finite: any other is computed again."""

    def __init__(self, key: str, width: int | None = None):
        self.path = cache_dir() / "features" / f"{key}.sqlite"
        self.width = width
        self.db = open_cache_database(self.path, "features (digest TEXT PRIMARY KEY, vector BLOB, sha TEXT)")

    def get_many(self, digests: list[str]) -> dict[str, np.ndarray]:
        found, unusable = {}, 0
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            query = f"SELECT digest, vector, sha FROM features WHERE digest IN ({','.join('?' * len(chunk))})"
            for digest, blob, sha in self.db.execute(query, chunk):
                vector = self._usable(blob, sha)
                if vector is None:
                    unusable += 1
                else:
                    found[digest] = vector
        if unusable:
            log.warning("%s: %d cached feature row(s) damaged, not %s floats wide or not finite; computed again",
                        self.path, unusable, self.width if self.width is not None else "whole")
        return found

    def _usable(self, blob, sha) -> np.ndarray | None:
        if not isinstance(blob, bytes) or not isinstance(sha, str) or hashlib.sha1(blob).hexdigest() != sha:
            return None  # a torn write (or not this cache's row) is recomputed, never served
        if len(blob) % 4 or (self.width is not None and len(blob) != 4 * self.width):
            return None
        vector = np.frombuffer(blob, dtype=np.float32)
        return vector if np.isfinite(vector).all() else None

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        rows = []
        for digest, vector in items.items():
            blob = np.asarray(vector, dtype=np.float32).tobytes()
            rows.append((digest, blob, hashlib.sha1(blob).hexdigest()))
        write_to_cache(self.db, "INSERT OR REPLACE INTO features VALUES (?, ?, ?)", rows)


def decode_pixels(path: Path, prep: Preprocessing) -> tuple[np.ndarray | None, str]:
    """One photo resized and cropped for the network, 8-bit (S, S, 3), or (None, why it cannot be used)."""
    try:
        return network_pixels(path, prep), ""
    except ImageError as error:
        return None, error.reason


def _decode_batch(task: tuple[list[Path], Preprocessing]) -> tuple[np.ndarray, list[str]]:
    """Photos resized and cropped, 8-bit (N, S, S, 3) (a quarter of the network input's bytes to send from a worker),
    and for each "" or why it cannot be used (its pixels are then zeros)."""
    paths, prep = task
    pixels = np.zeros((len(paths), prep.input_size, prep.input_size, 3), np.uint8)
    problems = []
    for i, path in enumerate(paths):
        decoded, problem = decode_pixels(path, prep)
        if decoded is not None:
            pixels[i] = decoded
        problems.append("" if decoded is not None else problem or "unusable")
    return pixels, problems


DECODE_AHEAD = 2  # batches per worker decoded ahead of the network: enough to keep it busy, and memory bounded


def ignore_interrupts() -> None:
    """In a worker process: Ctrl-C is the parent's to handle, so no worker prints a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no worker tracebacks


def may_fork_workers() -> bool:
    """Whether worker processes may be forked from here: not off the main thread, where the process is a threaded
    one (the web app runs each page in a thread of its server), and a child forked from it can inherit a lock
    another thread holds and wait on it forever (as cleanlab's did)."""
    return threading.current_thread() is threading.main_thread()


def _decoded_batches(paths: list[Path], prep: Preprocessing, batch_size: int):
    """(first position, 8-bit pixels, problems) per batch of `paths`; decoding runs in worker processes for large
    jobs, inline for a handful of photos, where starting workers would cost more than it saves, and inline where
    no worker may be forked (`may_fork_workers`)."""
    starts = range(0, len(paths), batch_size)
    tasks = ((start, (paths[start : start + batch_size], prep)) for start in starts)
    if len(paths) < 64 or not may_fork_workers():
        for start, task in tasks:
            yield start, *_decode_batch(task)
        return
    workers = min(4, os.cpu_count() or 1)
    with multiprocessing.Pool(workers, initializer=ignore_interrupts) as pool:
        pending: collections.deque = collections.deque()
        for start, task in tasks:
            pending.append((start, pool.apply_async(_decode_batch, (task,))))
            if len(pending) >= DECODE_AHEAD * workers:
                first, outcome = pending.popleft()
                yield first, *outcome.get()
        while pending:
            first, outcome = pending.popleft()
            yield first, *outcome.get()


@dataclass
class FeatureSet:
    features: np.ndarray  # (N, D) float32; rows of unusable photos are zeros
    usable: np.ndarray  # (N,) bool
    problems: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0  # photos run through the network this time (the rest came from the cache)
    computed_by_process: list[int] | None = None  # the same, per process of a multi-process run


class DigestIndex:
    """Remembers each file's content hash under its stat stamp (size, mtime, ctime, inode, device), as git's
    index does, so a warm run does not read every photo again to hash it. Any write to a file, a chmod or a
    replacement changes the stamp (ctime cannot be set back), and then the file is hashed again."""

    def __init__(self):
        self.db = open_cache_database(cache_dir() / "features" / "digests.sqlite",
                                      "digests (path BLOB PRIMARY KEY, stamp TEXT, digest TEXT)")

    @staticmethod
    def stamp(path: Path) -> str | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return None
        return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}:{info.st_dev}"

    def known(self, stamps: dict[bytes, str]) -> dict[bytes, str]:
        """The digests still valid for these (absolute path -> current stamp)."""
        found = {}
        keys = list(stamps)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = f"SELECT path, stamp, digest FROM digests WHERE path IN ({','.join('?' * len(chunk))})"
            for path, stamp_then, digest in self.db.execute(query, chunk):
                if stamps.get(path) == stamp_then:
                    found[path] = digest
        return found

    def remember(self, rows: list[tuple[bytes, str, str]]) -> None:
        if rows:
            write_to_cache(self.db, "INSERT OR REPLACE INTO digests VALUES (?, ?, ?)", rows)


def digests_of(paths: list[Path], problems: list[tuple[str, str]]) -> list[str | None]:
    """Each file's content digest (None where it cannot be read, the reason added to `problems`), through the
    digest index, so that files hashed before are not read again."""
    keys = [os.fsencode(os.path.abspath(path)) for path in paths]
    stamps = {key: stamp for key, path in zip(keys, paths) if (stamp := DigestIndex.stamp(path))}
    index = DigestIndex()
    known = index.known(stamps)

    def one(path, key):
        if key in known:
            return known[key]
        try:
            return file_digest(path)
        except ImageError as error:
            problems.append((error.path, error.reason))
            return None

    if len(paths) - len(known) < 16:
        digests = [one(path, key) for path, key in zip(paths, keys)]
    else:
        with ThreadPoolExecutor(max_workers=8) as pool:
            digests = list(pool.map(one, paths, keys))
    # Stamped before hashing: a file changed meanwhile has a newer stamp next time, so it is hashed again.
    index.remember([(key, stamps[key], digest) for key, digest in zip(keys, digests)
                    if digest and key in stamps and key not in known])
    return digests


def extract_features(
    paths: list[Path],
    backbone: Backbone | FeatureExtractor,
    prep: Preprocessing | None = None,
    batch_size: int = 32,
    engine: str = "auto",
    progress: bool | None = False,
) -> FeatureSet:
    """Pooled backbone features for each photo, from the cache where possible. `backbone`: a PyTorch one, or a
    FeatureExtractor (then `prep` is needed). `progress`: the bar of the photos computed shown (True) or not (False,
    as every extractor's `features_of_paths`: the library shows nothing unasked), or as the caller's
    `progress.showing` says (None: the bars of a training run's progress view, of a report's data issues)."""
    prep = prep or backbone.info.preprocessing
    network = extractor_of_backbone(backbone, prep)
    cache = FeatureCache(network.key, network.feature_dim)
    problems: list[tuple[str, str]] = []
    digests = digests_of(paths, problems)
    known = cache.get_many([d for d in digests if d])
    missing = [i for i, d in enumerate(digests) if d and d not in known]
    computed = 0
    if missing:
        run = make_engine(network, engine)
        with progress_bar(len(missing), "features", "img", enabled=progress) as bar:
            for first, images, errors in _decoded_batches([paths[i] for i in missing], prep, batch_size):
                ok = [j for j, error in enumerate(errors) if not error]
                vectors = run(images[ok]) if ok else np.zeros((0, network.feature_dim), np.float32)
                _check_vectors(vectors, network, run)
                fresh = {digests[missing[first + j]]: vectors[n] for n, j in enumerate(ok)}
                cache.put_many(fresh)
                known.update(fresh)
                computed += len(fresh)
                problems.extend((str(paths[missing[first + j]]), errors[j]) for j in range(len(errors)) if errors[j])
                bar.update(len(errors))
    features = np.zeros((len(paths), network.feature_dim), dtype=np.float32)
    usable = np.zeros(len(paths), dtype=bool)
    for i, digest in enumerate(digests):
        if digest in known:
            features[i] = known[digest]
            usable[i] = True
    return FeatureSet(features, usable, problems, computed)


def _check_vectors(vectors: np.ndarray, network: FeatureExtractor, engine) -> None:
    """The network's output as wide as its description says (a cached kit or ONNX file of another network is not)."""
    if vectors.ndim != 2 or vectors.shape[1] != network.feature_dim:
        source = getattr(engine, "path", f"the backbone of key {network.key}")
        raise ZoolensError(f"{source}: gives features of shape {list(vectors.shape[1:])}, not the "
                           f"{network.feature_dim} its backbone is described with; remove it from the cache")


def extract_features_sharded(paths: list[Path], backbone: Backbone, prep: Preprocessing, processes: Processes,
                             batch_size: int = 32) -> FeatureSet:
    """`extract_features` with the photos dealt out between the processes of a multi-process run (every
    world_size-th photo to each), the pieces gathered so that every process gets the whole set; its bar shown as
    the run's `progress.showing` says."""
    if processes.world_size == 1:
        return extract_features(paths, backbone, prep, batch_size, progress=None)
    mine = list(range(processes.rank, len(paths), processes.world_size))
    piece = extract_features([paths[i] for i in mine], backbone, prep, batch_size, progress=None)
    features = np.zeros((len(paths), backbone.feature_dim), dtype=np.float32)
    usable = np.zeros(len(paths), dtype=bool)
    problems, computed = [], []
    for positions, part in processes.gather((mine, piece)):
        features[positions] = part.features
        usable[positions] = part.usable
        problems += part.problems
        computed.append(part.computed)
    return FeatureSet(features, usable, sorted(problems), sum(computed), computed)
