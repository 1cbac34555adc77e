"""Text for a person's terminal: names read from disk (file names, class folders, a model's classes) may hold
escape sequences that would move the cursor, retitle the window or hide what precedes them. Everything the CLI
writes goes through `printable`, which shows such characters as Python escapes (`\\x1b`) instead."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# C0 and C1 controls but newline and tab, DEL, and the bidirectional overrides that reorder a line (Trojan Source).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with every control character shown as an escape; a non-UTF-8 byte of a file name (a lone surrogate)
    shown as its escape too, so printing never fails on it."""
    shown = _UNSAFE.sub(_escaped, str(text))
    if _SURROGATE.search(shown):
        shown = shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return shown


class PrintableStream:
    """A text stream (stdout) whose writes pass through `printable`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


class PrintableFormatter(logging.Formatter):
    """Log lines for the terminal: the message (rewritten by `rewrite`, when given) as `printable` text."""

    def __init__(self, fmt: str, rewrite: Callable[[str], str] | None = None):
        super().__init__(fmt)
        self.rewrite = rewrite or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        return printable(self.rewrite(super().format(record)))


@contextmanager
def printable_output(rewrite: Callable[[str], str] | None = None) -> Iterator[None]:
    """While a command runs: stdout through `printable`, and what the library logs (its steps at INFO, its warnings)
    one printable line each on stderr, through `rewrite` (progress bars keep their own carriage returns there)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(message)s", rewrite))
    logger = logging.getLogger("zoolens")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    stdout, sys.stdout = sys.stdout, PrintableStream(sys.stdout)
    try:
        yield
    finally:
        sys.stdout = stdout
        logger.removeHandler(handler)
        logger.setLevel(level)
