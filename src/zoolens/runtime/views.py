"""Test-time views: the features of several views of each photo (the photo, its mirror image, a wider centre
crop), averaged.

`ViewsExtractor` wraps any extractor and is one itself (same width, same members): each view is made from the one
decode of the photo (`transforms.decode_for_network`, as `network_pixels` decodes it), the mirror by flipping the
8-bit pixels, and each view's features are cached on their own, keyed by file content under the member's key and
the view ("plain" is the member's own cache), so that plain features stay where they were and a second run
computes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.data.transforms import Preprocessing, cropped_pixels, decode_for_network
from zoolens.errors import ImageError, ZoolensError
from zoolens.progress import progress_bar
from zoolens.runtime.extractor import Extractor
from zoolens.runtime.features import FeatureCache, FeatureExtractor, FeatureSet, digests_of

__all__ = ["VIEWS", "ViewsExtractor", "view_pixels", "views_of"]


def _plain(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    return cropped_pixels(image, prep)


def _wide(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    # The whole centre square scaled to the input size (the plain view's shorter side is resize_size, ~14 % more).
    return cropped_pixels(image, Preprocessing(prep.input_size, prep.input_size, prep.mean, prep.std))


def _mirrored(view: Callable[[Image.Image, Preprocessing], np.ndarray]):
    return lambda image, prep: view(image, prep)[:, ::-1]


# name -> (decoded photo, preprocessing) -> 8-bit (S, S, 3) pixels. "plain" is what every answer sees.
VIEWS: dict[str, Callable[[Image.Image, Preprocessing], np.ndarray]] = {
    "plain": _plain,
    "mirror": _mirrored(_plain),
    "wide": _wide,
    "wide_mirror": _mirrored(_wide),
}
FROM_PIXELS = {"plain": lambda pixels: pixels, "mirror": lambda pixels: pixels[:, :, ::-1]}  # of (N, S, S, 3) crops

DECODE_THREADS = min(4, os.cpu_count() or 1)
BATCH = 32


def views_of(text: str) -> tuple[str, ...]:
    """"mirror,wide" -> ("plain", "mirror", "wide"): the plain view always first, each view once. ZoolensError
    naming an unknown view."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        raise ZoolensError(f"views: {', '.join(unknown)} unknown (choose from {', '.join(VIEWS)})")
    return tuple(dict.fromkeys(["plain", *names]))


def view_pixels(image: Image.Image, prep: Preprocessing, views: tuple[str, ...]) -> list[np.ndarray]:
    """Each view of one decoded photo, 8-bit (S, S, 3)."""
    return [np.ascontiguousarray(VIEWS[name](image, prep)) for name in views]


@dataclass(frozen=True)
class ViewsExtractor:
    """`extractor`'s features averaged over `views` of each photo (each member of a combination at its own size)."""

    extractor: Extractor
    views: tuple[str, ...] = ("plain", "mirror")

    def __post_init__(self):
        unknown = [name for name in self.views if name not in VIEWS]
        if unknown or not self.views:
            raise ZoolensError(f"views: {', '.join(unknown) or 'none'} (choose from {', '.join(VIEWS)})")

    @property
    def key(self) -> str:
        return f"{self.extractor.key}~views={'+'.join(self.views)}"

    @property
    def feature_dim(self) -> int:
        return self.extractor.feature_dim

    @property
    def preprocessing(self) -> Preprocessing:
        return self.extractor.preprocessing

    @property
    def members(self) -> tuple[FeatureExtractor, ...]:
        """The backbones it runs (combining it with another extractor by `extractor.combined` drops the views)."""
        return self.extractor.members

    def parts(self, features: np.ndarray) -> list[np.ndarray]:
        return self.extractor.parts(features)

    def view_key(self, member: FeatureExtractor, view: str) -> str:
        """Where a member's features of one view are cached: the plain view's are the member's own."""
        return member.key if view == "plain" else f"{member.key}~{view}"

    def features_of_paths(self, paths: list[Path], progress: bool = False) -> FeatureSet:
        """Photo files' averaged features, each view's from its cache where it has them; a photo is usable when
        every view of it is, for every member."""
        paths = [Path(p) for p in paths]
        problems: list[tuple[str, str]] = []
        digests = digests_of(paths, problems)
        found = [self._member_features(member, paths, digests, progress) for member in self.members]
        problems += [problem for one in found for problem in one.problems]
        return FeatureSet(np.concatenate([one.features for one in found], axis=1),
                          np.logical_and.reduce([one.usable for one in found]), list(dict.fromkeys(problems)),
                          sum(one.computed for one in found))

    def _member_features(self, member: FeatureExtractor, paths: list[Path], digests: list[str | None],
                         progress: bool) -> FeatureSet:
        caches = [FeatureCache(self.view_key(member, view), member.feature_dim) for view in self.views]
        known = [cache.get_many([d for d in digests if d]) for cache in caches]
        missing = [i for i, d in enumerate(digests) if d and any(d not in one for one in known)]
        problems: list[tuple[str, str]] = []
        computed = 0
        if missing:
            with progress_bar(len(missing), "views", "img", enabled=progress) as bar, \
                    ThreadPoolExecutor(DECODE_THREADS) as pool:
                for start in range(0, len(missing), BATCH):
                    batch = missing[start : start + BATCH]
                    decoded = list(pool.map(lambda i: _decoded_views(paths[i], member.preprocessing, self.views),
                                            batch))
                    ok = [(i, pixels) for i, (pixels, _) in zip(batch, decoded) if pixels is not None]
                    problems += [(str(paths[i]), why) for i, (pixels, why) in zip(batch, decoded) if pixels is None]
                    for v, (cache, have) in enumerate(zip(caches, known)):
                        todo = [(i, pixels[v]) for i, pixels in ok if digests[i] not in have]
                        if todo:
                            vectors = member.features_of_pixels(np.stack([pixels for _, pixels in todo]))
                            fresh = {digests[i]: vector for (i, _), vector in zip(todo, vectors)}
                            cache.put_many(fresh)
                            have.update(fresh)
                    computed += len(ok)
                    bar.update(len(batch))
        features = np.zeros((len(paths), member.feature_dim), np.float32)
        usable = np.zeros(len(paths), bool)
        for i, digest in enumerate(digests):
            if digest and all(digest in have for have in known):
                features[i] = np.mean([have[digest] for have in known], axis=0)
                usable[i] = True
        return FeatureSet(features, usable, problems, computed)

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Photos already resized and cropped, 8-bit (N, S, S, 3): only views made of those pixels can be (the plain
        view and its mirror); others need the photo (ZoolensError: give them as images or paths)."""
        others = [view for view in self.views if view not in FROM_PIXELS]
        if others:
            raise ZoolensError(f"views {', '.join(others)} need the whole photo; give these photos as images or paths")
        return np.mean([self.extractor.features_of_pixels(np.ascontiguousarray(FROM_PIXELS[view](pixels)))
                        for view in self.views], axis=0).astype(np.float32)

    def features_of_images(self, images: list) -> np.ndarray:
        """Photos (paths, bytes or PIL images), each decoded once as `transforms.network_pixels` decodes it."""
        parts = []
        for member in self.members:
            decoded = [decode_for_network(image, member.preprocessing) for image in images]
            per_view = zip(*(view_pixels(image, member.preprocessing, self.views) for image in decoded))
            parts.append(np.mean([member.features_of_pixels(np.stack(pixels)) for pixels in per_view], axis=0))
        return np.concatenate(parts, axis=1).astype(np.float32)


def _decoded_views(path: Path, prep: Preprocessing, views: tuple[str, ...]) -> tuple[list[np.ndarray] | None, str]:
    """One photo decoded once, as its views; or (None, why it cannot be used)."""
    try:
        return view_pixels(decode_for_network(path, prep), prep, views), ""
    except ImageError as error:
        return None, error.reason
