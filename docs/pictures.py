"""The README's pictures, made again: `python docs/pictures.py [MODEL]` (default runs/demo, which `make demo` trains).

docs/images/web-app.png: starts the web app on that model under `streamlit run`, uploads three of scikit-image's photos (a cat, a person, a
rocket: they ship with scikit-image, so no dataset's photo is in the picture) in headless Chromium,
and saves the page.

docs/images/camera-trap-report.png: a synthetic season of 600 frames (benchmarks/camera_trap.py's: the shared
camera-trap frames jittered, in bursts with EXIF times, 70 % of the bursts empty, in camera folders) through
`zoolens predict MODEL SEASON --out season.parquet --camera-traps` and `zoolens results season.parquet --report`,
its two figures (activity by hour, each camera's days) saved as the page shows them. About 5 minutes on a 2-core CPU.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
PHOTOS = ("chelsea", "astronaut", "rocket")


def skimage_jpeg(name: str) -> bytes:
    from PIL import Image
    from skimage import data

    buffer = BytesIO()
    Image.fromarray(getattr(data, name)()).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def web_app(model: Path, workdir: Path):
    from zoolens.apps import web

    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", web.__file__, "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer", "--", "--model", str(model.resolve())]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read()
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the web app did not start")
            time.sleep(0.5)


def report_picture(model: Path, out: Path, frames: int = 600) -> None:
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from camera_trap import make_season
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        make_season(work / "season", frames)
        for command in (["predict", str(model), str(work / "season"), "--out", str(work / "season.parquet"),
                         "--camera-traps"],
                        ["results", str(work / "season.parquet"), "--report", str(work / "season.html")]):
            subprocess.run([sys.executable, "-m", "zoolens.cli", *command], check=True, stdout=subprocess.DEVNULL)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto((work / "season.html").as_uri())
            first, last = page.locator("#activity"), page.locator("#timeline")
            top, bottom = first.bounding_box(), last.bounding_box()
            page.screenshot(path=str(out), full_page=True, clip={"x": top["x"], "y": top["y"], "width": top["width"],
                                                                   "height": bottom["y"] + bottom["height"] - top["y"]})
            browser.close()
    print(f"wrote {out}")


def main(model: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir:
        process, url = web_app(model, Path(workdir))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url, timeout=60_000)
                page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
                page.set_input_files("input[type=file]", [{"name": f"{name}.jpg", "mimeType": "image/jpeg",
                                                           "buffer": skimage_jpeg(name)} for name in PHOTOS])
                page.wait_for_function(f"document.querySelectorAll('[data-testid=zl-answer]').length >= {len(PHOTOS)}",
                                       timeout=120_000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
                page.wait_for_timeout(1500)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=False)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"wrote {out}")


if __name__ == "__main__":
    model = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    main(model, HERE / "images" / "web-app.png")
    report_picture(model, HERE / "images" / "camera-trap-report.png")
