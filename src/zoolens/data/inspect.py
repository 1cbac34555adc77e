"""`zoolens data inspect`: what is in a dataset folder before anyone trains on it."""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from zoolens.data.folders import ImageFolder, scan_folder
from zoolens.data.images import PHOTO_FORMATS, file_digest, open_image
from zoolens.errors import ImageError
from zoolens.plotting import plain_text


@dataclass
class PhotoFacts:
    path: str
    label: str
    part: str
    width: int = 0
    height: int = 0
    mode: str = ""
    digest: str = ""
    problem: str = ""


@dataclass
class DatasetSummary:
    root: str
    classes: list[str]
    counts: dict[str, dict[str, int]]  # part -> class -> photos ("all" for an unsplit folder)
    widths: list[int]
    heights: list[int]
    modes: dict[str, int]
    special: dict[str, list[str]]  # greyscale / cmyk / alpha / palette / 16-bit -> paths
    duplicates: list[list[str]]
    unreadable: list[tuple[str, str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # class -> the name people read

    def shown(self, label: str) -> str:
        """A class as the table shows it: its name, with its folder's name after it when they differ."""
        name = self.names.get(label, label)
        return label if name == label else f"{name} ({label})"

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "classes": self.classes,
            "names": {c: self.names.get(c, c) for c in self.classes},
            "counts": self.counts,
            "image_size": size_stats(self.widths, self.heights),
            "modes": self.modes,
            "special": {k: len(v) for k, v in self.special.items()},
            "special_files": self.special,
            "duplicates": self.duplicates,
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def size_stats(widths: list[int], heights: list[int]) -> dict:
    if not widths:
        return {}
    w, h = np.array(widths), np.array(heights)
    return {
        "width": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max())},
        "height": {"min": int(h.min()), "median": float(np.median(h)), "max": int(h.max())},
    }


def _facts(path: Path, label: str, part: str) -> PhotoFacts:
    facts = PhotoFacts(str(path), label, part)
    try:
        upright = open_image(path)  # full decode: finds truncated and damaged files, refuses huge ones unread
        facts.width, facts.height = upright.size
        facts.digest = file_digest(path)
        with Image.open(path, formats=PHOTO_FORMATS) as image:
            facts.mode = image.mode + ("+transparency" if "transparency" in image.info else "")
    except ImageError as error:
        facts.problem = error.reason
    except OSError as error:
        facts.problem = f"cannot read ({error.strerror or error})"
    except Exception as error:  # Pillow raises assorted types on hostile files; report, never crash
        facts.problem = f"not a usable image ({type(error).__name__})"
    return facts


SPECIAL_MODES = {
    "greyscale": lambda m: m.split("+")[0] in ("L", "LA", "1", "I;16", "I;16B", "I;16L", "I", "F"),
    "cmyk": lambda m: m.startswith("CMYK"),
    "alpha": lambda m: m.startswith(("RGBA", "LA", "PA")) or m.endswith("+transparency"),
    "palette": lambda m: m.startswith("P"),
    "16-bit": lambda m: m.startswith(("I;16", "I")) and not m.startswith("I;8"),
}


def inspect_folder(folder: ImageFolder | str | Path, progress: bool = True) -> DatasetSummary:
    folder = folder if isinstance(folder, ImageFolder) else scan_folder(folder)
    parts = folder.parts or {}
    jobs = [(s.path, s.label, parts.get(s.path, "all")) for s in folder.samples]
    with ThreadPoolExecutor(max_workers=4) as pool:
        facts = list(tqdm(pool.map(lambda job: _facts(*job), jobs), total=len(jobs), desc="inspecting",
                          unit="img", disable=not progress, leave=False))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {name: 0 for name in folder.classes})
    by_digest: dict[str, list[str]] = defaultdict(list)
    special: dict[str, list[str]] = {name: [] for name in SPECIAL_MODES}
    good = [f for f in facts if not f.problem]
    for f in good:
        counts[f.part][f.label] += 1
        by_digest[f.digest].append(f.path)
        for name, test in SPECIAL_MODES.items():
            if test(f.mode):
                special[name].append(f.path)
    return DatasetSummary(
        root=str(folder.root),
        classes=folder.classes,
        counts=dict(counts),
        widths=[f.width for f in good],
        heights=[f.height for f in good],
        modes=dict(Counter(f.mode for f in good)),
        special=special,
        duplicates=[paths for paths in by_digest.values() if len(paths) > 1],
        unreadable=[(f.path, f.problem) for f in facts if f.problem],
        skipped=folder.skipped,
        names=folder.names,
    )


def format_summary(summary: DatasetSummary) -> str:
    lines = [f"{summary.root}: {len(summary.classes)} classes"]
    parts = list(summary.counts)
    width = max(5, *(len(summary.shown(c)) for c in summary.classes))
    lines.append("  " + "class".ljust(width) + "".join(p.rjust(9) for p in parts) + "    share")
    totals = {p: sum(summary.counts[p].values()) for p in parts}
    grand = sum(totals.values()) or 1
    for name in summary.classes:
        row = [summary.counts[p][name] for p in parts]
        lines.append("  " + summary.shown(name).ljust(width) + "".join(str(n).rjust(9) for n in row)
                     + f"   {sum(row) / grand:6.1%}")
    lines.append("  " + "total".ljust(width) + "".join(str(totals[p]).rjust(9) for p in parts))
    stats = size_stats(summary.widths, summary.heights)
    if stats:
        w, h = stats["width"], stats["height"]
        lines.append(f"image size: width {w['min']}-{w['max']} (median {w['median']:.0f}), "
                     f"height {h['min']}-{h['max']} (median {h['median']:.0f})")
    lines.append("modes: " + ", ".join(f"{m} {n}" for m, n in sorted(summary.modes.items(), key=lambda x: -x[1])))
    notes = [f"{name} {len(paths)}" for name, paths in summary.special.items() if paths]
    lines.append("special images: " + (", ".join(notes) if notes else "none"))
    lines.append(f"exact duplicates: {len(summary.duplicates)} group(s)")
    for group in summary.duplicates[:10]:
        lines.append("  " + "  =  ".join(group))
    problems = summary.unreadable + summary.skipped
    lines.append(f"unusable files: {len(problems)}")
    for path, reason in problems[:30]:
        lines.append(f"  {path}: {reason}")
    if len(problems) > 30:
        lines.append(f"  ... and {len(problems) - 30} more (use --json)")
    return "\n".join(lines)


@plain_text
def plot_class_balance(summary: DatasetSummary, path: Path) -> Path:
    from zoolens.plotting import plt, save_figure

    figure, axis = plt.subplots(figsize=(max(5, 0.5 * len(summary.classes) + 3), 4))
    x = np.arange(len(summary.classes))
    parts = list(summary.counts)
    bottom = np.zeros(len(x))
    for part in parts:
        values = np.array([summary.counts[part][c] for c in summary.classes])
        axis.bar(x, values, bottom=bottom, label=part)
        bottom += values
    axis.set_xticks(x, [summary.names.get(c, c) for c in summary.classes], rotation=45, ha="right")
    axis.set_ylabel("photos")
    axis.set_title("Photos per class")
    if len(parts) > 1:
        axis.legend()
    return save_figure(figure, path)
