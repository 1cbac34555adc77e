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
