"""CSV cells that people open in a spreadsheet and programs read back (OWASP, "CSV injection").

A spreadsheet takes a cell that starts with `=`, `+`, `-` or `@` (a tab or a carriage return too) for a formula:
a photo named `=HYPERLINK("http://…","x").jpg` becomes a link, and worse formulas run. The rule, for every CSV
zoolens writes (predict --csv, the batch summary, the `data issues` files, split manifests, corrections files):

- written: a text cell that starts with one of = + - @ TAB CR, or with a single quote, gets one more single quote
  in front (`to_cell`). A spreadsheet shows the cell as the text it is and runs nothing; numbers are numbers, left
  as they are.
- read back: every zoolens reader of its own CSV files (corrections, split manifests) removes exactly one leading
  quote from a cell that starts with a quote followed by one of those characters (`from_cell`).

The pair is a bijection: a photo really named `=x.jpg` or `'a.jpg` goes out as `'=x.jpg` or `''a.jpg` and comes
back as its name. A cell written by hand, or saved by a spreadsheet (which drops the quote it shows), reads the
same: `=x.jpg` and `'=x.jpg` both name `=x.jpg`, and `'a.jpg` names `'a.jpg`."""

from __future__ import annotations

import os

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
QUOTED_STARTS = FORMULA_STARTS + (QUOTE,)


def to_cell(value):
    """`value` as written into a CSV cell: text (or a path) that starts like a formula, or with a quote, behind one
    more quote; anything else as it is."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.startswith(QUOTED_STARTS):
        return QUOTE + value
    return value


def from_cell(text):
    """A cell of a CSV file zoolens wrote, as the text it stands for: `to_cell` undone."""
    if isinstance(text, str) and text.startswith(QUOTE) and text[1:].startswith(QUOTED_STARTS):
        return text[1:]
    return text


def to_cells(values) -> list:
    """A row's cells, each through `to_cell`."""
    return [to_cell(value) for value in values]


def to_row(row: dict) -> dict:
    """A row for csv.DictWriter, each value through `to_cell`."""
    return {key: to_cell(value) for key, value in row.items()}
