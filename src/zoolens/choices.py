"""The choices and defaults that the library, the commands and the apps share. Constants only, importing nothing,
so that the command line's help, usage errors and `--version` read them without loading NumPy or PyTorch."""

DEFAULT_BACKBONE = "mobilenet_v2"

# "none of these" / "not sure" checks: on, strict (turns more of the model's own photos away), off (never).
OPEN_SET_MODES = ("on", "strict", "off")
DEFAULT_OPEN_SET = "on"

DEFAULT_MIN_CONFIDENCE = 0.6  # the apps' "not sure" line (the library and `zoolens predict` default to none)

# What a split keeps in one part (data.grouping): a camera-trap event's frames, a camera's, a site's, or nothing.
GROUP_BY = ("event", "camera", "site", "none")

EXPLAIN_METHODS = ("gradcam", "saliency")
EXPLAIN_CHOICES = (*EXPLAIN_METHODS, "both")
