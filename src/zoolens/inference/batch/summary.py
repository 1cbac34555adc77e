"""What a batch run did: its counts per folder, as a table and a CSV."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from zoolens.files import replaced_atomically
from zoolens.inference.batch.results import ResultsDataset
from zoolens.inference.prediction import CLASS, NONE_OF_THESE, NOT_SURE
from zoolens.spreadsheet import to_cells


@dataclass
class BatchSummary:
    out: Path
    predicted: int  # photos handled by this run, errors included
    skipped: int  # photos an earlier run had already done
    errors: int  # photos of this run that could not be used
    classes: list[str]
    per_folder: dict[str, Counter] = field(default_factory=dict)  # folder -> class/"not sure"/"errors" -> count
    summary_csv: Path | None = None
    sorted_into: Path | None = None
    stopped_at_limit: bool = False
    placed: Counter = field(default_factory=Counter)  # --sort-into: "placed", "already" (there), "missing",
    # "refused" (rows naming no photo inside the folder)
    copied: bool = False  # --copy: placed by copying, not linking
    names: dict[str, str] = field(default_factory=dict)  # class -> the name people read, where it differs
    removed: int = 0  # rows of earlier runs removed: photos changed since (answered again) or gone, untrusted rows

    def lines(self, limit: int | None = None) -> list[str]:
        """What the run did, in words (the CLI prints these)."""
        said = [f"{self.out}: predicted {self.predicted} photos ({self.errors} unusable), skipped {self.skipped} "
                "already done"]
        if self.removed:
            said.append(f"{self.out}: removed {self.removed} earlier rows (photos changed since and answered again, "
                        "gone, answered twice, or not this job's)")
        if self.stopped_at_limit:
            said.append(f"stopped after {limit or self.predicted} photos (the limit); run the same command again to "
                        "go on")
        if self.sorted_into is not None:
            said.append(f"{self.sorted_into}: {'copied' if self.copied else 'linked'} {self.placed['placed']} photos "
                        f"into class folders ({self.placed['already']} already there, {self.placed['missing']} no "
                        "longer found" + (f", {self.placed['refused']} refused: not photos inside the folder"
                                          if self.placed["refused"] else "") + ")")
        return said


# ---- the per-folder summary -----------------------------------------------------------------------
def folder_counts(results: ResultsDataset) -> dict[str, Counter]:
    """folder -> counts of each class, "not sure", "none of these" and "errors", over every part (earlier runs too)."""
    per_folder: dict[str, Counter] = {}
    for table in results.read_parts(["folder", "verdict", "label", "error"]):
        for folder, verdict, label, error in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            answer = "errors" if error else (label if verdict == CLASS else verdict)
            per_folder.setdefault(folder, Counter())[answer] += 1
    return dict(sorted(per_folder.items()))


def summary_rows(per_folder: dict[str, Counter], classes: list[str]) -> tuple[list[str], list[list]]:
    answers = [*classes, NOT_SURE, NONE_OF_THESE, "errors"]
    header = ["folder", "photos", *answers]
    rows = []
    for folder, counts in [*per_folder.items(), ("(all)", sum(per_folder.values(), Counter()))]:
        rows.append([folder, sum(counts.values()), *(counts[name] for name in answers)])
    return header, rows


def write_summary_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """The summary as CSV; text cells (folder and class names) by the spreadsheet rule (zoolens/spreadsheet.py)."""
    with replaced_atomically(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(to_cells(header))
        writer.writerows(to_cells(row) for row in rows)


def format_summary(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(f"{cell!s:<{widths[i]}}" if i == 0 else f"{cell!s:>{widths[i]}}"
                       for i, cell in enumerate(row)) for row in [header, *rows]]
    return "\n".join(lines)


def default_summary_path(out: Path) -> Path:
    return out.with_name(f"{out.name.removesuffix('.parquet')}-summary.csv")


