"""Fixtures shared by the test files (a test asks for one by naming it as an argument) and pytest hooks.

Two tiers: tests/unit/ (nothing trained, no network built, no command, server or browser started:
`pytest tests/unit`) and tests/integration/ (training, backbones and ONNX engines, whole commands, servers, browsers,
Xvfb); every test under integration/ is marked `slow` here, so `pytest -m "not slow"` runs exactly the unit tier.

Nothing here is imported by a test: plain functions and constants (copy_subset, tree_snapshot, run_without_torch,
streamlit_server, ...) live in helpers.py, `from helpers import ...` (pyproject's `pythonpath` puts tests/ on the
import path for both folders).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import FORMULA_CLASS, FORMULA_NAMES, copy_subset, missing_tool, read_line, stop_process

# Every test session starts with an empty feature/ONNX cache, as a new user would.
os.environ.setdefault("ZOOLENS_CACHE", tempfile.mkdtemp(prefix="zoolens-cache-"))

UNIT, INTEGRATION = Path(__file__).parent / "unit", Path(__file__).parent / "integration"
# Fixtures that make a test an integration test wherever it asks for them.
INTEGRATION_ONLY = {"trained_model": "trains a model", "display": "starts Xvfb", "root": "opens a Tk window"}


def pytest_collection_modifyitems(config, items):
    """The folder is the tier: a test under tests/integration/ is slow whether or not its file says so, and a test
    under tests/unit/ that is marked slow or asks for a fixture that trains or starts a display stops the run."""
    misplaced = []
    for item in items:
        folders = Path(item.path).parents
        if INTEGRATION in folders:
            item.add_marker(pytest.mark.slow)
        elif UNIT not in folders:
            misplaced.append(f"{item.nodeid}: put it in tests/unit/ or tests/integration/")
        elif item.get_closest_marker("slow"):
            misplaced.append(f"{item.nodeid}: marked slow; move it to tests/integration/")
        else:
            misplaced += [f"{item.nodeid}: asks for {name}, which {why}; move it to tests/integration/"
                          for name, why in INTEGRATION_ONLY.items() if name in item.fixturenames]
    if misplaced:
        raise pytest.UsageError("tests in the wrong tier (see DEVELOPERS.md, Tests):\n" + "\n".join(misplaced))


@pytest.fixture(scope="session")
def animals3() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("animals3")


@pytest.fixture(scope="session")
def imagewoof() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("imagewoof")


@pytest.fixture(scope="session")
def chelsea(tmp_path_factory) -> Path:
    """skimage's cat photo (Chelsea) saved as a JPEG: a real photo that needs no dataset."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("chelsea") / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path)
    return path


@pytest.fixture(scope="session")
def small_animals(animals3, tmp_path_factory) -> Path:
    """60 real photos per class of animals3 (cats, dogs, panda)."""
    return copy_subset(animals3, tmp_path_factory.mktemp("small") / "animals", per_class=60)


@pytest.fixture(scope="session")
def other_animals(animals3, tmp_path_factory) -> Path:
    """Different animals3 photos from `small_animals`, for evaluating on a folder the model never saw."""
    return copy_subset(animals3, tmp_path_factory.mktemp("other") / "animals", per_class=20, offset=500)


@pytest.fixture(scope="session")
def few_animals(small_animals, tmp_path_factory) -> Path:
    """12 photos per class of `small_animals`: enough for a run that must start, or be refused, in seconds."""
    return copy_subset(small_animals, tmp_path_factory.mktemp("few") / "animals", per_class=12)


@pytest.fixture
def data_copy(few_animals, tmp_path) -> Path:
    """A private copy of `few_animals`, for the tests that try to write into the data folder."""
    return copy_subset(few_animals, tmp_path / "photos", per_class=12)


@pytest.fixture
def formula_named(animals3, tmp_path) -> Path:
    """6 animals3 photos per class, the panda class in a folder named like a formula (FORMULA_CLASS), and cat photos
    under names a spreadsheet would run (FORMULA_NAMES)."""
    data = copy_subset(animals3, tmp_path / "data", per_class=6)
    (data / "panda").rename(data / FORMULA_CLASS)
    cats = sorted((animals3 / "cats").iterdir())[100:100 + len(FORMULA_NAMES)]
    for name, photo in zip(FORMULA_NAMES, cats):
        shutil.copyfile(photo, data / "cats" / name)
    return data


@pytest.fixture(scope="session")
def trained_model(small_animals, tmp_path_factory):
    import zoolens

    out = tmp_path_factory.mktemp("models") / "small"
    return zoolens.train(small_animals, out, progress=False)


@pytest.fixture(scope="session")
def display():
    """A private X server for the whole session: Xvfb picks a free display number and writes it to the pipe
    we give it. One per session because Tk keeps its X connection after a window is destroyed, and Xlib
    exits the process when that server goes away."""
    if shutil.which("Xvfb") is None:
        missing_tool("Xvfb is not installed", "apt-get install -y xvfb to run the desktop tests")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x800x24", "-nolisten", "tcp",
                               "-noreset"], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        number = read_line(read_end)
        if not number:
            pytest.fail("Xvfb did not start")
        previous = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = f":{number}"
        assert server.poll() is None, "Xvfb exited"
        yield f":{number}"
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
    finally:
        stop_process(server, timeout=10)


@pytest.fixture
def root(display):
    """A Tk main window on the session's virtual display, destroyed after the test (unless the test closed it)."""
    import tkinter as tk

    window = tk.Tk()
    yield window
    try:
        window.destroy()
    except tk.TclError:
        pass  # the test closed it (Exit)
