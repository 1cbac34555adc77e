"""Many users at once: the page's upload path from 20 threads, and HTTP on a real `streamlit run` (loopback only).

A short version of benchmarks/web_load.py (20 users x 5 uploads, 20 x 4 requests) for CI."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from web_load import StreamlitServer, http_load, in_process_load, upload_mix  # noqa: E402

USERS = 20


def test_twenty_users_uploading_at_once_get_answers_and_no_errors(trained_model, small_animals):
    from zoolens.apps.common import Predictor

    photos = sorted((small_animals / "cats").glob("*.jpg"))[:5] + sorted((small_animals / "panda").glob("*.jpg"))[:5]
    uploads = upload_mix(photos)
    report = in_process_load(Predictor(trained_model.path), uploads, users=USERS, uploads_each=5)
    print(report)
    assert report["requests"] == USERS * 5 and report["errors"] == 0, report["first_errors"]
    # Upload k of the 100 is uploads[k % 13]: the last three (text, empty, bomb) are refused, the photos answered.
    refused = sum(1 for k in range(USERS * 5) if k % len(uploads) >= len(photos))
    assert (report["answered"], report["refused"]) == (USERS * 5 - refused, refused) == (79, 21)
    assert report["rss_after_mb"] - report["rss_before_mb"] < 500


def test_twenty_http_clients_against_streamlit_on_loopback(trained_model):
    with StreamlitServer(Path(trained_model.path).parent) as server:
        assert server.url.startswith("http://127.0.0.1:")
        report = http_load(server, users=USERS, requests_each=4)
    print(report)
    # Every request answered with the health check's "ok" or the page itself (how fast: benchmarks/web_load.py).
    assert report["requests"] == USERS * 4 and report["errors"] == 0, report["first_errors"]
