"""`zoolens data inspect`: what is in a dataset folder before anyone trains on it."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.data.folders import ImageFolder, scan_folder
from zoolens.data.images import PHOTO_FORMATS, file_digest, open_image
from zoolens.errors import ImageError
from zoolens.plotting import plain_text
from zoolens.progress import tracked

log = logging.getLogger("zoolens")


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
    samples: dict[str, list[str]] = field(default_factory=dict)  # class -> a few usable photos, spread over it

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
        facts = list(tracked(pool.map(lambda job: _facts(*job), jobs), len(jobs), "inspecting", enabled=progress))
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
        samples={c: spread([f.path for f in good if f.label == c], SAMPLES_PER_CLASS) for c in folder.classes},
    )


def spread(items: list, count: int) -> list:
    """`count` of `items`, evenly spaced from first to last (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


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


SAMPLES_PER_CLASS = 8
SHEET_THUMB = 112  # px
SHEET_LABEL = 190  # px for the class name column
SHEET_MAX_CLASSES = 60


def plot_contact_sheet(summary: DatasetSummary, path: Path) -> Path:
    """samples.png: one row per class, its name and photo count, then a few of its photos (centre crops), to see
    at a glance what each class holds; at most SHEET_MAX_CLASSES rows."""
    from PIL import ImageDraw, ImageFont, ImageOps

    classes = summary.classes[:SHEET_MAX_CLASSES]
    gap = 6
    width = SHEET_LABEL + SAMPLES_PER_CLASS * (SHEET_THUMB + gap)
    sheet = Image.new("RGB", (width, len(classes) * (SHEET_THUMB + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    totals = {c: sum(part.get(c, 0) for part in summary.counts.values()) for c in classes}
    for row, label in enumerate(classes):
        top = gap + row * (SHEET_THUMB + gap)
        draw.text((8, top + 8), _clipped(summary.names.get(label, label), 22), fill="#1f2a24", font=font)
        draw.text((8, top + 30), f"{totals[label]} photos" + (f"\n{_clipped(label, 26)}" if label in summary.names
                                                              and summary.names[label] != label else ""),
                  fill="#5b6b7a", font=small)
        for column, photo in enumerate(summary.samples.get(label, [])):
            try:
                thumb = ImageOps.fit(open_image(photo), (SHEET_THUMB, SHEET_THUMB))
            except (ImageError, OSError):
                continue  # read once already; gone or changed since
            sheet.paste(thumb, (SHEET_LABEL + column * (SHEET_THUMB + gap), top))
    if len(summary.classes) > SHEET_MAX_CLASSES:
        log.info("samples.png shows the first %d of %d classes", SHEET_MAX_CLASSES, len(summary.classes))
    sheet.save(path, format="PNG", optimize=True)
    return Path(path)


def _clipped(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


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
