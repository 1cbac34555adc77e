"""The one error type users see: a single sentence naming the file and the problem."""


class ZoolensError(Exception):
    """A problem with the user's input that zoolens explains in one line (no traceback)."""


class ImageError(ZoolensError):
    """One image that cannot be used; training and prediction skip it and name it."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
