import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# Every test session starts with an empty feature/ONNX cache, as a new user would.
os.environ.setdefault("ZOOLENS_CACHE", tempfile.mkdtemp(prefix="zoolens-cache-"))


@pytest.fixture(scope="session")
def animals3() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("animals3")


@pytest.fixture(scope="session")
def imagewoof() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("imagewoof")


def copy_subset(source: Path, target: Path, per_class: int, offset: int = 0) -> Path:
    """A small real dataset: `per_class` photos of each class of `source`, copied (never linked)."""
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / class_dir.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(class_dir.iterdir())[offset : offset + per_class]:
            shutil.copyfile(photo, target / class_dir.name / photo.name)
    return target


@pytest.fixture(scope="session")
def small_animals(animals3, tmp_path_factory) -> Path:
    """60 real photos per class of animals3 (cats, dogs, panda)."""
    return copy_subset(animals3, tmp_path_factory.mktemp("small") / "animals", per_class=60)


@pytest.fixture(scope="session")
def other_animals(animals3, tmp_path_factory) -> Path:
    """Different animals3 photos from `small_animals`, for evaluating on a folder the model never saw."""
    return copy_subset(animals3, tmp_path_factory.mktemp("other") / "animals", per_class=20, offset=500)


@pytest.fixture(scope="session")
def trained_model(small_animals, tmp_path_factory):
    import zoolens

    out = tmp_path_factory.mktemp("models") / "small"
    return zoolens.train(small_animals, out, progress=False)


def tree_snapshot(root: Path) -> dict:
    """Every file below root with its size, mtime and content hash: to prove a folder was left alone."""
    import hashlib

    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Terminate, then kill what does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def missing_tool(reason: str, install_hint: str) -> None:
    """A test that needs a system tool skips without it on a developer machine; CI must have it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must have it (.ci/run installs it)")
    pytest.skip(f"{reason}: {install_hint}")


def _read_line(fd: int, timeout: float = 30.0) -> str:
    """Read up to the newline: Xvfb writes the number and the newline separately, and dies if the pipe
    is closed in between."""
    import select

    text = b""
    deadline = time.monotonic() + timeout
    while not text.endswith(b"\n") and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 16)
        if not chunk:
            break
        text += chunk
    os.close(fd)
    return text.decode().strip()


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
        number = _read_line(read_end)
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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def streamlit_server(app_args: list[str], workdir: Path, script: Path | None = None):
    """The web app (or another Streamlit `script`) under `streamlit run` on a free loopback port, as `zoolens web`
    starts it, in `workdir`; its URL. Stopped at the end."""
    import socket
    import sys
    import time
    import urllib.request

    from zoolens.apps import web
    from zoolens.cli.apps import MAX_UPLOAD_MB

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "streamlit", "run", str(script or Path(web.__file__)), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--client.toolbarMode", "viewer", "--", *app_args]
    log_path = workdir.parent / f"streamlit-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"streamlit did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.3)
            yield url
        finally:
            stop_process(process, timeout=15)


@contextlib.contextmanager
def chromium_browser():
    if not Path(CHROMIUM).exists():
        missing_tool("Debian chromium is not installed", "apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_tool("playwright is not installed", "pip install playwright; never `playwright install`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def streamlit_screenshot(page, path: Path) -> None:
    """A Streamlit page once its run has ended: while it runs, the elements of the run before stay on the page,
    faded, and a screenshot shows a mix of the two (a button of the last photo beside the next one's caption)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)
    except PlaywrightTimeout:
        pass  # a screenshot of a page still running is still worth looking at
    page.wait_for_timeout(1500)  # the faded elements leave a moment after the run ends
    page.screenshot(path=str(path), full_page=True)


# ---- answering without PyTorch ----------------------------------------------------------------
HEAVY = ("torch", "torchvision", "lightning", "pytorch_lightning", "sklearn", "matplotlib", "timm")


def block_imports(modules: tuple[str, ...]) -> str:
    """Code to run first in a child process: any import of `modules` fails there, as on a machine without them."""
    return f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {modules!r}:
            raise ImportError(f"{{name}} is not installed here")
sys.meta_path.insert(0, Refuse())
"""

ANSWER = """
import json
from zoolens.inference.model import Model
model = Model.load(sys.argv[1])
answers = model.predict(sys.argv[2:], top_k=3)
print(json.dumps([[a.verdict, a.label, a.reason, round(a.confidence, 4)] for a in answers]))
"""


def run_without_torch(code: str, *args, cwd: Path | None = None, allow: tuple[str, ...] = (),
                      env: dict | None = None) -> subprocess.CompletedProcess:
    """`code` in a child process where the HEAVY modules, but those in `allow`, cannot be imported."""
    block = block_imports(tuple(m for m in HEAVY if m not in allow))
    return subprocess.run([sys.executable, "-c", block + code, *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, **(env or {})})


def answers_without_torch(model_path: Path, photos: list[Path]) -> list[list]:
    done = run_without_torch(ANSWER, model_path, *photos)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
