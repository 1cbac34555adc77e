"""The `zoolens` command line: `program` (parser, main, run), `commands` (the core commands), `common` (what the
command families share), and one module per family (`apps`, `explain`, `studies`). A thin layer over the Python
API, above every other part of zoolens."""

from zoolens.cli.program import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
