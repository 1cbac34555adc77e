"""Load on the web app: many users at once over loopback. Prints one JSON object per part.

1. In process, the page's own upload path (`check_upload` then `classify_upload` on the one shared,
   cached predictor) from USERS threads x UPLOADS uploads each: real photos mixed with refused ones.
   Streamlit carries uploads over its websocket protocol, so this drives the same code a page run does.
2. Over HTTP, a real `streamlit run` on 127.0.0.1: USERS threads fetching the health endpoint and the page.
3. Over loopback in real browsers: USERS headless Chromium sessions at once, each uploading UPLOADS photos
   through the page and waiting for all its answers (when Debian's chromium and playwright are installed).

    python benchmarks/web_load.py [--users 20] [--uploads 50] [--requests 50] [--model MODEL]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

WEB_SCRIPT = str(Path(__file__).resolve().parents[1] / "src" / "zoolens" / "apps" / "web.py")


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _summary(name: str, latencies: list[float], errors: list[str], seconds: float, **extra) -> dict:
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "benchmark": name,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "requests_per_s": round((len(latencies) + len(errors)) / seconds, 1),
        "seconds": round(seconds, 1),
        **extra,
    }


def upload_mix(photos: list[Path]) -> list[tuple[str, bytes]]:
    """Real photos, plus what hostile or careless clients send: text named .jpg, an empty file, a pixel bomb."""
    import io

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, format="PNG")  # 81 megapixels in a few kilobytes
    uploads = [(p.name, p.read_bytes()) for p in photos]
    return uploads + [("notes.jpg", b"not an image at all"), ("empty.png", b""), ("bomb.png", bomb.getvalue())]


def in_process_load(predictor, uploads: list[tuple[str, bytes]], users: int, uploads_each: int) -> dict:
    """USERS threads, each sending UPLOADS_EACH uploads through the page's check-then-classify path."""
    from zoolens.apps import web

    latencies: list[float] = []
    errors: list[str] = []
    outcomes = {"answered": 0, "refused": 0}
    lock = threading.Lock()

    def user(number: int) -> None:
        for i in range(uploads_each):
            name, data = uploads[(number * uploads_each + i) % len(uploads)]
            started = time.perf_counter()
            try:
                result = web.classify_upload(predictor, web.check_upload(name, data), 3, 0.5)
                kind = "refused" if result.error else "answered"
            except Exception as error:  # any exception is a failure of the app
                with lock:
                    errors.append(f"{name}: {type(error).__name__}: {error}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                outcomes[kind] += 1

    before = rss_mb()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    return _summary("web_uploads_in_process", latencies, errors, time.perf_counter() - started, users=users,
                    uploads_per_user=uploads_each, **outcomes, rss_before_mb=before, rss_after_mb=rss_mb())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StreamlitServer:
    """`streamlit run` the web app on a free 127.0.0.1 port; always stopped on exit."""

    def __init__(self, models_dir: Path, start_timeout: float = 60):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.models_dir = models_dir
        self.start_timeout = start_timeout
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> StreamlitServer:
        command = [sys.executable, "-m", "streamlit", "run", WEB_SCRIPT, "--server.port", str(self.port),
                   "--server.address", "127.0.0.1", "--server.headless", "true",
                   "--browser.gatherUsageStats", "false", "--", "--models-dir", str(self.models_dir)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("streamlit did not start")
                time.sleep(0.3)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def http_load(server: StreamlitServer, users: int, requests_each: int, timeout: float = 10) -> dict:
    """USERS threads, each alternating GET /_stcore/health and GET / REQUESTS_EACH times."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user(number: int) -> None:
        for i in range(requests_each):
            path = "/_stcore/health" if i % 2 == 0 else "/"
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(server.url + path, timeout=timeout) as response:
                    body = response.read()
                    ok = response.status == 200 and (body.strip() == b"ok" if path != "/" else b"<html" in body.lower())
            except OSError as error:
                ok, body = False, str(error).encode()
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors.append(f"{path}: {body[:80]!r}")

    before = server.rss_mb()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    return _summary("web_http_streamlit", latencies, errors, time.perf_counter() - started, users=users,
                    requests_per_user=requests_each, server_rss_before_mb=before, server_rss_after_mb=server.rss_mb())


CHROMIUM = "/usr/bin/chromium"  # Debian's; never a downloaded browser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def browser_load(server: StreamlitServer, uploads: list[tuple[str, bytes]], users: int, uploads_each: int,
                 timeout_s: float = 900) -> dict:
    """USERS real browser tabs (headless Chromium, each its own session) at once, each uploading UPLOADS_EACH
    photos through the page's uploader over loopback and waiting until every answer is on its page."""
    import asyncio

    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []

    async def user(browser, number: int) -> None:
        files = [uploads[(number * uploads_each + i) % len(uploads)] for i in range(uploads_each)]
        payload = [{"name": f"{i:03d}-{name}", "mimeType": "image/jpeg", "buffer": data}
                   for i, (name, data) in enumerate(files)]
        context = await browser.new_context()
        page = await context.new_page()
        try:
            await page.goto(server.url, timeout=timeout_s * 1000)
            await page.wait_for_selector("input[type=file]", state="attached", timeout=timeout_s * 1000)
            started = time.perf_counter()
            await page.set_input_files("input[type=file]", payload)
            await page.wait_for_function(f"document.querySelectorAll('[data-testid=zl-answer]').length >= "
                                         f"{uploads_each}", timeout=timeout_s * 1000, polling=500)
            latencies.append(time.perf_counter() - started)
        except Exception as error:  # a page that never shows all its answers is a failure
            errors.append(f"user {number}: {type(error).__name__}: {str(error)[:120]}")
        finally:
            await context.close()

    async def run() -> float:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            started = time.perf_counter()
            await asyncio.gather(*(user(browser, n) for n in range(users)))
            seconds = time.perf_counter() - started
            await browser.close()
            return seconds

    before = server.rss_mb()
    seconds = asyncio.run(run())
    return _summary("web_browser_uploads", latencies, errors, seconds, users=users, uploads_per_user=uploads_each,
                    photos_answered=len(latencies) * uploads_each, server_rss_before_mb=before,
                    server_rss_after_mb=server.rss_mb(),
                    note="latency = one user's whole batch, upload to the last answer on the page")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=50, help="uploads per user (in process)")
    parser.add_argument("--requests", type=int, default=50, help="HTTP requests per user")
    parser.add_argument("--model", help="model folder (default: train a small animals3 one)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import animals3, demo_model, fresh_cache

    from zoolens.apps.common import Predictor

    model = Path(args.model) if args.model else demo_model(fresh_cache())
    photos = sorted((animals3() / "cats").glob("*.jpg"))[:10] + sorted((animals3() / "panda").glob("*.jpg"))[:10]
    predictor = Predictor(model)
    print(json.dumps(in_process_load(predictor, upload_mix(photos), args.users, args.uploads)), flush=True)
    with StreamlitServer(model.parent) as server:
        print(json.dumps(http_load(server, args.users, args.requests)), flush=True)
        if Path(CHROMIUM).exists():
            print(json.dumps(browser_load(server, upload_mix(photos), args.users, args.uploads)), flush=True)


if __name__ == "__main__":
    main()
