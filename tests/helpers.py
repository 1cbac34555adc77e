"""Plain functions and constants shared by the test files: `from helpers import copy_subset`.

Fixtures (and pytest hooks) live in conftest.py; everything a test calls by name lives here. Nothing in this
module is a fixture, so a newcomer reads conftest.py for what a test can ask for by argument, and this file for
what it can import.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hardening_corpus import running_as_root
from PIL import Image


# ---- small real datasets and untouched folders ----------------------------------------------------------------

def copy_subset(source: Path, target: Path, per_class: int, offset: int = 0) -> Path:
    """A small real dataset: `per_class` photos of each class of `source`, copied (never linked)."""
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / class_dir.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(class_dir.iterdir())[offset : offset + per_class]:
            shutil.copyfile(photo, target / class_dir.name / photo.name)
    return target


def tree_snapshot(root: Path) -> dict:
    """Every file below root with its size, mtime and content hash: to prove a folder was left alone."""
    import hashlib

    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_entries(root: Path) -> dict[str, str]:
    """Every path below root, folders and links included (tree_snapshot lists files only)."""
    return {str(p.relative_to(root)): "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
            for p in sorted(root.rglob("*"))}


def users_partial(tmp_path: Path, progress: bool = False) -> Path:
    """A user's own folder named like zoolens' `<out>.partial`; with `progress`, it even holds a checkpoint's
    progress file, though zoolens did not make it."""
    from zoolens.training.checkpoints import PROGRESS_FILE

    mine = tmp_path / "mine.partial"
    (mine / "drafts").mkdir(parents=True)
    (mine / "drafts" / "essay.txt").write_text("three weeks of work")
    if progress:
        (mine / PROGRESS_FILE).write_text(json.dumps({"fingerprint": {}, "phases": {}}))
    return mine


# ---- processes and tools --------------------------------------------------------------------------------------

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


def read_line(fd: int, timeout: float = 30.0) -> str:
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


def zoolens(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# ---- the command line starting without heavy libraries --------------------------------------------------------

STARTUP_HEAVY = ("torch", "torchvision", "lightning", "sklearn", "matplotlib", "scipy", "pandas", "timm", "captum",
                 "onnxruntime", "streamlit", "optuna", "ray")


# Runs the program as `zoolens ARGS`, then names the heavy modules it loaded, on the last line of stderr.
PROBE = f"""
import runpy, sys
sys.argv = ["zoolens", *sys.argv[1:]]
try:
    runpy.run_module("zoolens.cli", run_name="__main__")
except SystemExit as done:
    code = done.code
print("exit", code, "heavy:", *[m for m in {STARTUP_HEAVY!r} if m in sys.modules], file=sys.stderr)
"""


def run_probe(*arguments: str) -> tuple[str, str, list[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True, text=True, timeout=60)
    *said, last = result.stderr.strip().splitlines()
    words = last.split()
    assert words[0] == "exit", result.stderr
    return words[1], result.stdout + "\n".join(said), words[words.index("heavy:") + 1 :]


# ---- the web app in a browser ---------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def streamlit_server(app_args: list[str], workdir: Path, script: Path | None = None):
    """The web app (or another Streamlit `script`) under `streamlit run` on a free loopback port, as `zoolens web`
    starts it, in `workdir`; its URL. Stopped at the end."""
    import socket
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


# ---- the desktop app ------------------------------------------------------------------------------------------

def pump_until(root, done, timeout: float = 90.0) -> None:
    """Run the Tk event loop until `done()` is true, like mainloop would."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail("the desktop app did not finish in time")
        root.update()
        time.sleep(0.02)
    for _ in range(5):  # let the last redraws happen before anything looks at the window
        root.update()
        time.sleep(0.02)


def open_app(root, model, **options):
    from zoolens.apps.desktop import DesktopApp

    app = DesktopApp(root, model, **options)
    pump_until(root, lambda: not app.busy)
    return app


# ---- hostile inputs and models --------------------------------------------------------------------------------

# What each refused input must be called, wherever it shows up.
REASONS = {
    "zero_bytes": "empty file (0 bytes)",
    "truncated": "damaged image",
    "text": "not an image",
    "bomb": "decompression bomb",
    "symlink_loop": "symbolic link loop",
    "dangling_link": "broken symbolic link",
    "fifo": "not a regular file",
    "unreadable": "permission denied",
}


def expected_refusals() -> dict[str, str]:
    return {k: v for k, v in REASONS.items() if not (k == "unreadable" and running_as_root())}


# Model files from strangers, for every command that takes one.
class WritesMarker:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_models(trained_model, tmp_path) -> dict[str, Path]:
    """Broken copies of a real model: a pickle that would write a marker, truncated weights, lies in the JSON."""
    made = {}

    def copy(name):
        target = tmp_path / name
        shutil.copytree(trained_model.path, target)
        made[name] = target
        return target

    WritesMarker.marker = str(tmp_path / "code-ran")
    (copy("pickle") / "model.safetensors").write_bytes(pickle.dumps({"weights": WritesMarker()}))
    weights = copy("truncated") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    for name, change in (("classes", lambda m: m["classes"].append("zebra")),
                         ("backbone", lambda m: m["backbone"].update(name="no_such_net_v9"))):
        meta_path = copy(name) / "zoolens.json"
        meta = json.loads(meta_path.read_text())
        change(meta)
        meta_path.write_text(json.dumps(meta))
    (copy("not-json") / "zoolens.json").write_bytes(b"\xff\xfe{garbage")
    return made


# ---- the HTML report ------------------------------------------------------------------------------------------

class PageParts(HTMLParser):
    """Section ids, image sources and any tags that would load something from elsewhere."""

    def __init__(self):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []  # (alt, src)
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append((attrs.get("alt", ""), attrs.get("src", "")))
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)


def parse(path) -> tuple[str, PageParts]:
    html = path.read_text(encoding="utf-8")
    parts = PageParts()
    parts.feed(html)
    return html, parts


def decode(src: str) -> Image.Image:
    header, payload = src.split(",", 1)
    return Image.open(io.BytesIO(base64.b64decode(payload)))


# ---- small CSV files and names that attack a reader ---------------------------------------------------------

def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...]) -> Path:
    """A CSV file of a header and plain rows, as a person's spreadsheet saves one."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# File and class names a spreadsheet takes for a formula (issue 32, finding 15).
FORMULA = '=HYPERLINK("evil.example","click").jpg'
FORMULA_NAMES = [FORMULA, "-1.jpg", "+1.jpg", "@sum.jpg", "\tx.jpg", "'a.jpg", "''b.jpg", "'=c.jpg"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_CLASS = '=HYPERLINK("evil.example","panda")'


def no_formula(path: Path) -> list[list[str]]:
    """The file's rows; asserts that no cell starts like a formula."""
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert not [cell for row in table for cell in row if cell.startswith(FORMULA_STARTS)], path
    return table


# Class names written as Markdown or links (issue 32, findings 6 and 10), for the three animals3 classes.
HOSTILE_NAMES = {"cats": "![x](http://127.0.0.1:9/p.png)", "dogs": "[click](http://example.invalid)",
                 "panda": "**bold**"}
CLASSES = ["cats", "dogs", "panda"]


def names_from(tmp_path: Path, rows: dict[str, str]) -> dict[str, str]:
    """The readable names zoolens gives CLASSES when a dataset's names.csv holds `rows`."""
    from zoolens.data.class_names import readable_names

    folder = tmp_path / "data"
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    lines = ["class,name"] + [f'{label},"{name}"' for label, name in rows.items()]
    (folder / "names.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return readable_names(folder, CLASSES)

# ---- the shared datasets' classes -------------------------------------------------------------------------

# Imagewoof's class ids and their breeds, as the shared datasets' README lists them.
IMAGEWOOF_BREEDS = {
    "n02086240": "Shih-Tzu", "n02087394": "Rhodesian ridgeback", "n02088364": "beagle",
    "n02089973": "English foxhound", "n02093754": "Border terrier", "n02096294": "Australian terrier",
    "n02099601": "golden retriever", "n02105641": "Old English sheepdog", "n02111889": "Samoyed",
    "n02115641": "dingo",
}


# ---- camera-trap files ----------------------------------------------------------------------------------------

def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def package_with_blanks(camera_traps: Path, target: Path) -> Path:
    """The official example copied, with three real empty frames (speciesnet-test's blanks) added to its media as
    local files of another deployment, each observed `blank`: a package of two labels to train on."""
    shutil.copytree(camera_traps / "camtrap-dp-example", target)
    media_header, media = read_rows(target / "media.csv")
    obs_header, observations = read_rows(target / "observations.csv")
    for n, name in enumerate(["blank.jpg", "blank2.jpg", "blank3.jpg"]):
        shutil.copyfile(camera_traps / "speciesnet-test" / name, target / "media" / f"empty-{n}.jpg")
        media.append({**dict.fromkeys(media_header, ""), "mediaID": f"empty{n}", "deploymentID": "29b7d356",
                      "timestamp": f"2020-08-01T0{n}:00:00+02:00", "filePath": f"media/empty-{n}.jpg",
                      "fileMediatype": "image/jpeg", "filePublic": "false", "fileName": f"empty-{n}.jpg"})
        observations.append({**dict.fromkeys(obs_header, ""), "observationID": f"empty{n}_1",
                             "deploymentID": "29b7d356", "mediaID": f"empty{n}", "eventID": f"emptyevent{n}",
                             "observationLevel": "media", "observationType": "blank",
                             "classificationMethod": "human"})
    write_rows(target / "media.csv", media_header, media)
    write_rows(target / "observations.csv", obs_header, observations)
    return target


SCHEMAS = Path(__file__).parent / "data" / "camtrap-dp-1.0.2"


CAMTRAP = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/"


LOCAL_COPIES = {
    CAMTRAP + "camtrap-dp-profile.json": "camtrap-dp-profile.json",
    CAMTRAP + "deployments-table-schema.json": "deployments-table-schema.json",
    CAMTRAP + "media-table-schema.json": "media-table-schema.json",
    CAMTRAP + "observations-table-schema.json": "observations-table-schema.json",
    "https://specs.frictionlessdata.io/schemas/data-package.json": "data-package.json",
    "http://json.schemastore.org/geojson.json": "schemastore-geojson.json",
    "https://geojson.org/schema/GeoJSON.json": "GeoJSON.json",
}


PROJECT = {"project": {"title": "zoolens test season", "samplingDesign": "opportunistic",
                       "captureMethod": ["activityDetection"]},
           "contributors": [{"title": "A. Tester", "role": "contact"}],
           "licenses": [{"name": "CC0-1.0", "scope": "data"}, {"name": "CC-BY-4.0", "scope": "media"}]}


class LocalCopies:
    """A requests transport adapter that answers the schemas' URLs from tests/data and refuses every other URL."""

    def __init__(self):
        self.asked = []

    def send(self, request, **kwargs):
        import requests
        from requests.models import Response

        self.asked.append(request.url)
        if request.url not in LOCAL_COPIES:
            raise requests.ConnectionError(f"the test fetches nothing: {request.url}")
        response = Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response.raw = io.BytesIO((SCHEMAS / LOCAL_COPIES[request.url]).read_bytes())
        return response

    def close(self):
        pass


def frictionless_errors(folder: Path) -> list[str]:
    """What frictionless says of the package in `folder`: its profile (Camtrap DP 1.0.2, with the Data Package and
    GeoJSON schemas it refers to) and every table against its table schema (types, required, enums, keys)."""
    import frictionless
    import requests

    adapter = LocalCopies()
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    with frictionless.system.use_context(http_session=session):
        report = frictionless.validate(str(folder / "datapackage.json"))
    errors = [f"{row[0]}: {row[1]}" for row in report.flatten(["type", "note"])]
    if not errors:  # checked against all of them: the profile, what it refers to, the three table schemas
        assert set(adapter.asked) == set(LOCAL_COPIES)
    return errors


def md_validate(path, base=None):
    from megadetector.postprocessing.validate_batch_results import (
        ValidateBatchResultsOptions,
        validate_batch_results,
    )

    options = ValidateBatchResultsOptions()
    options.check_image_existence = base is not None
    options.relative_path_base = str(base) if base is not None else None
    return validate_batch_results(str(path), options)["validation_results"]


def exif_with_zero_denominator_gps(date_time: str) -> bytes:
    """EXIF written byte by byte (Pillow refuses to write a zero denominator): IFD0 with DateTime and a GPS IFD whose
    GPSLatitude is three rationals over 0."""
    text = date_time.encode("ascii") + b"\x00"
    ifd0_at, gps_at = 8, 8 + 2 + 2 * 12 + 4
    text_at = gps_at + 2 + 12 + 4
    rationals_at = text_at + len(text)
    tiff = b"II*\x00" + struct.pack("<I", ifd0_at)
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x0132, 2, len(text), text_at)
    tiff += struct.pack("<HHII", 0x8825, 4, 1, gps_at) + struct.pack("<I", 0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 2, 5, 3, rationals_at) + struct.pack("<I", 0)
    tiff += text + struct.pack("<6I", 1, 0, 0, 0, 0, 0)
    return b"Exif\x00\x00" + tiff


# ---- answering without PyTorch --------------------------------------------------------------------------------

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
