"""The one error type users see: a single sentence naming the file and the problem."""


class ZoolensError(Exception):
    """A problem with the user's input that zoolens explains in one line (no traceback)."""


class ImageError(ZoolensError):
    """One image that cannot be used; training and prediction skip it and name it."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(ZoolensError, ValueError):
    """A setting out of range or unknown, naming the field (a TrainConfig field, a function's argument) rather than
    a command-line option: the CLI shows it as its option (`lr` as `--lr`). A ValueError, as Python users expect."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def setting(field: str) -> str:
    """A setting named inside a message, as its field (a function's argument, a TrainConfig field) in backquotes:
    the CLI shows it as its option (`sort_into` as --sort-into), Python users see the name they pass."""
    return f"`{field}`"


def missing_extra(module: str, extra: str, needed_by: str) -> ZoolensError:
    """The one line for a library of one of zoolens' extras (apps, studies, scale) that is not installed:
    `needed_by` (`zoolens web`) needs `module`, and which extra brings it."""
    return ZoolensError(f"{needed_by} needs {module}, which this installation of zoolens leaves out: "
                        f"pip install 'zoolens[{extra}]'")


def require_extra(module: str, extra: str, needed_by: str) -> None:
    """Refuses with `missing_extra`'s line when `module` is not installed. Looked up, not imported: the command that
    needs it imports it (or runs it in a process of its own)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import blocked by a finder, a half-removed package
        found = False
    if not found:
        raise missing_extra(module, extra, needed_by)
