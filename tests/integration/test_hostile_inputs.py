"""The rest of the second hardening pass (docs/hardening.md): pictures that cost more than their bytes, names
that break plots and terminals, full disks, foreign files in an output folder, and model folders whose files
point outside the data. Each test builds the input that broke zoolens and asserts the outcome: the message,
the exit status, the folders left as they were, and bounded work (bytes read, memory) under a timeout."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import copy_subset, tree_snapshot
from PIL import Image

from zoolens.data.images import HEADER_ALLOWANCE, MAX_FILE_BYTES, open_image
from zoolens.errors import ImageError, ZoolensError

FAST = ["--image-size", "64", "--epochs", "5"]

# Run a zoolens command in a child that reports, on its last stderr line, its peak memory and the bytes it read.
MEASURED = """
import json, sys
from zoolens.cli import main
code = main(sys.argv[1:])
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (pytest) that forked this child.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_mb": hwm / 1024,
                  "read_mb": int(io["rchar"]) / 1e6}), file=sys.stderr)
sys.exit(code)
"""


def zoolens(*args, timeout=300, file_size_limit=None, env=None):
    """`zoolens ARGS` in a child; with `file_size_limit`, no file it writes may grow past that many bytes (a full
    disk: writes fail with EFBIG instead of the process being killed)."""
    def limit():
        if file_size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, preexec_fn=limit, env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def measured(*args, timeout=120):
    result = subprocess.run([sys.executable, "-c", MEASURED, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(result.stderr.strip().splitlines()[-1])


def one_line_error(result, code=2) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoolens: error: ")]
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny(small_animals, tmp_path_factory) -> Path:
    return copy_subset(small_animals, tmp_path_factory.mktemp("hostile") / "animals", per_class=12)


@pytest.fixture
def data(tiny, tmp_path) -> Path:
    return Path(shutil.copytree(tiny, tmp_path / "animals"))


@pytest.fixture(scope="module")
def model(tiny, tmp_path_factory) -> Path:
    import zoolens

    out = tmp_path_factory.mktemp("hostile-model") / "model"
    zoolens.train(tiny, out, progress=False, image_size=64, epochs=5)
    return out


def jpeg_header(size=(300, 200), cut=600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 50)).save(buffer, "JPEG")
    return buffer.getvalue()[:cut]


# ---- pictures that cost more than their bytes --------------------------------------------------------
def test_a_20_gb_sparse_photo_is_refused_unread_by_inspect_and_predict(data, model):
    """`data inspect` was killed by the kernel reading it whole; now it is refused from stat(): the same command on
    the same folder without it reads as many bytes and peaks as high, give or take a little."""
    _, without = measured("data", "inspect", data)
    sparse = data / "cats" / "huge.jpg"
    with open(sparse, "wb") as handle:
        handle.write(jpeg_header())
        handle.truncate(20 * 1024**3)
    result, cost = measured("data", "inspect", data)
    assert result.returncode == 0
    assert f"{sparse}: too large for a photo (20.0 GiB; at most {MAX_FILE_BYTES >> 30} GiB)" in result.stdout
    # Measured here: 97 MB read and 841 MB peak (PyTorch's import) with it and without it alike.
    assert cost["read_mb"] - without["read_mb"] < 5 and cost["peak_mb"] - without["peak_mb"] < 100, (cost, without)
    result, cost = measured("predict", model, sparse)
    assert "error: too large for a photo" in result.stdout
    assert cost["read_mb"] < 150, cost  # measured 94 MB: the interpreter's imports and the model


# a 900 MB sparse file read in a child process: 17 s
def test_a_jpeg_header_padded_with_zeros_is_given_up_after_a_bounded_read(tmp_path):
    """600 bytes of header and 900 MB of zeros (under the size limit) hung inspect and predict for minutes: the
    decoder now stops once it has read more than a header can hold."""
    padded = tmp_path / "padded.jpg"
    with open(padded, "wb") as handle:
        handle.write(jpeg_header())
        handle.truncate(900 * 1024**2)
    code = ("import sys; from zoolens.data.images import open_image; from zoolens.errors import ImageError\n"
            "try:\n    open_image(sys.argv[1])\nexcept ImageError as e:\n    print(e.reason)\n"
            "io = dict(l.split(': ') for l in open('/proc/self/io').read().splitlines()); print(io['rchar'])")
    result = subprocess.run([sys.executable, "-c", code, str(padded)], capture_output=True, text=True, timeout=60)
    reason, read = result.stdout.strip().splitlines()
    assert reason == "no image header in its first 4 MB (damaged, or padded with junk)"
    assert int(read) < 60e6  # the interpreter's own imports, then HEADER_ALLOWANCE of the file


# 19 MB decoded to the allowance: 17 s
def test_an_upload_of_a_header_and_zeros_stops_at_the_header_allowance():
    """The web app decodes uploads from memory: a 19 MB header and zeros took 23.7 s of server CPU."""
    blob = jpeg_header() + bytes(19 * 1024**2)
    read = []

    class Counting(io.BytesIO):
        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

    from zoolens.data import images

    with pytest.raises(images.DecodeGivenUp, match="no image header in its first 4 MB"):
        with images.GuardedReader(Counting(blob), 30.0) as handle:
            Image.open(handle, formats=images.PHOTO_FORMATS).load()
    assert sum(read) <= HEADER_ALLOWANCE + 65536
    with pytest.raises(ImageError, match="no image header"):
        open_image(blob)


# 40 MB of PNG chunks: 11 s
def test_a_header_declaring_few_pixels_cannot_pull_in_much_more_data():
    """A 64 x 48 PNG whose pixels follow 40 MB of empty IDAT chunks: Pillow reads chunk after chunk for as long as
    they come; now reading stops at 8 bytes a declared pixel and 16 MB of metadata."""
    import struct
    import zlib

    from zoolens.data.images import MAX_BYTES_PER_PIXEL, METADATA_ALLOWANCE

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buffer, "PNG")
    png, header_end = buffer.getvalue(), 8 + 25  # the signature and IHDR
    padding = chunk(b"IDAT", b"") * (40 * 1024**2 // 12)
    assert MAX_BYTES_PER_PIXEL * 64 * 48 + METADATA_ALLOWANCE < len(padding)
    with pytest.raises(ImageError, match=r"^<bytes>: far more data than its pixels can hold \(damaged, or padded"):
        open_image(png[:header_end] + padding + png[header_end:])


def test_avif_is_one_rule_named_or_in_a_folder(data, model):
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    Image.new("RGB", (96, 96), (200, 150, 90)).save(data / "cats" / "tabby.avif")
    from zoolens.data.folders import scan_folder

    assert data / "cats" / "tabby.avif" in {s.path for s in scan_folder(data).samples}
    named = zoolens("predict", model, data / "cats" / "tabby.avif")
    assert named.returncode == 0 and "error" not in named.stdout


def test_an_eps_named_jpg_never_reaches_pillows_eps_reader(tmp_path, monkeypatch, model):
    from PIL import EpsImagePlugin

    reached = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: reached.append(1))
    eps = tmp_path / "drawing.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageError, match="not an image file"):
        open_image(eps)
    assert reached == []
    result = zoolens("predict", model, eps)
    assert "error: not an image file" in result.stdout


# ---- names and messages --------------------------------------------------------------------------------
def test_mathtext_in_class_and_file_names_is_drawn_as_text(data, tmp_path):
    """`$\\undefinedmacro$` as a class folder and a file name crashed train (after saving the weights, leaving
    evaluation/ half-written), evaluate, report and explain in Matplotlib's mathtext parser."""
    import zoolens
    from zoolens.evaluation.explain import Explainable, explain, write_explanations
    from zoolens.evaluation.report import write_report

    odd = "$\\undefinedmacro$ cats"
    (data / "cats").rename(data / odd)
    photo = data / odd / "$\\frac{1}{0}$.jpg"
    shutil.copyfile(next((data / odd).glob("*.jpg")), photo)
    out = tmp_path / "model"
    model = zoolens.train(data, out, progress=False, image_size=64, epochs=3)
    assert odd in model.classes
    assert {p.name for p in (out / "evaluation").iterdir()} >= {"metrics.json", "confusion_matrix.png",
                                                              "confusion_matrix_normalized.png"}
    report = write_report(out, data=data, out=tmp_path / "report.html", progress=False, gallery_size=2)
    assert odd in report.read_text(encoding="utf-8")
    written = write_explanations(explain(Explainable.from_model(out), [photo], "gradcam"), tmp_path / "why", "gradcam")
    assert written[0] is not None and written[0].stat().st_size > 0


def test_escape_sequences_in_names_are_shown_escaped_on_the_terminal(data, model):
    """A file named with a terminal escape (here: set the window title, clear the screen) was printed raw."""
    hostile = data / "cats" / "a\x1b]0;pwned\x07\x1b[2J.jpg"
    shutil.copyfile(next((data / "cats").glob("*.jpg")), hostile)
    broken = data / "dogs" / "\x1b[31mred\u202e.jpg"
    broken.write_bytes(b"not a photo")
    for result in (zoolens("predict", model, data), zoolens("data", "inspect", data)):
        assert result.returncode == 0, result.stderr
        shown = result.stdout + result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in shown and "\u202e" not in shown
        assert "a\\x1b]0;pwned\\x07\\x1b[2J.jpg" in shown and "\\x1b[31mred\\u202e.jpg" in shown
    refused = zoolens("predict", data / "no\x1b[2Jmodel", hostile)
    assert "\x1b" not in refused.stderr and "no\\x1b[2Jmodel" in one_line_error(refused)


def test_a_photo_path_over_the_system_limit_is_named(data):
    """A photo path over 4096 bytes was silently left out of training."""
    deep = data / "cats"
    while len(os.fsencode(deep)) < 4200:
        deep = deep / ("d" * 200)
    here = os.getcwd()
    try:  # made relative, step by step: the system refuses the whole path at once
        os.chdir(data / "cats")
        for part in deep.relative_to(data / "cats").parts:
            os.mkdir(part)
            os.chdir(part)
        Image.new("RGB", (64, 64)).save("deep.jpg")
    finally:
        os.chdir(here)
    from zoolens.data.folders import scan_folder

    skipped = dict(scan_folder(data).skipped)
    reasons = [reason for path, reason in skipped.items() if "ddd" in path]
    assert len(reasons) == 1 and reasons[0].startswith("folder cannot be listed; its photos are left out (path too "
                                                       "long for the file system (")
    result = zoolens("data", "inspect", data)
    assert "path too long for the file system" in result.stdout


def test_a_class_with_one_photo_among_many_is_warned_about_with_the_counts(data, tmp_path):
    (data / "rare").mkdir()
    shutil.copyfile(next((data / "cats").glob("*.jpg")), data / "rare" / "only.jpg")
    result = zoolens("train", data, "--out", tmp_path / "model", "--quiet", *FAST)
    assert result.returncode == 0, result.stderr
    assert "class 'rare' has only 1 training photo (the others 8–8): the model will seldom if ever answer it" \
        in result.stderr
    assert "class 'cats'" not in result.stderr


# ---- full disks, devices, foreign files in --out -------------------------------------------------------
def leftovers(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_a_full_disk_during_train_is_one_line_and_leaves_no_staging_folder(tiny, tmp_path):
    out = tmp_path / "runs" / "model"
    out.parent.mkdir()
    result = zoolens("train", tiny, "--out", out, "--quiet", *FAST, file_size_limit=60_000,
                     env={"ZOOLENS_CACHE": str(tmp_path / "cache")})
    line = one_line_error(result)
    assert line.startswith(f"zoolens: error: {out}: the model could not be written (File too large")
    assert line.endswith("nothing was changed")
    # No model, no staging folder; the finished head is kept for --resume, and said so.
    assert leftovers(out.parent) == {"model.partial"}
    assert f"{out}.partial: the finished epochs are kept there: --resume goes on from them" in result.stderr
    assert "cache not written" in result.stderr  # the feature cache could not be written either: a warning


@pytest.mark.parametrize("command", [
    ["evaluate", "{model}", "{data}", "--out", "{out}/evaluation"],
    ["report", "{model}", "--data", "{data}", "--out", "{out}/report.html"],
    ["explain", "{model}", "{data}/cats", "--out", "{out}/why"],
    ["export", "{model}", "--out", "{out}/model.onnx"],
    ["data", "inspect", "{data}", "--out", "{out}/inspected"],
])
def test_a_full_disk_is_one_line_and_the_unfinished_output_is_removed(command, model, tiny, tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    args = [part.format(model=model, data=tiny, out=out) for part in command]
    before = tree_snapshot(model)
    result = zoolens(*args, file_size_limit=8_000, env={"ZOOLENS_CACHE": str(tmp_path / "cache")})
    line = one_line_error(result, code=1)
    assert "cannot be written or read (File too large)" in line and str(out) in line
    assert leftovers(out) == set()
    assert tree_snapshot(model) == before


def test_a_device_as_a_file_output_is_written_to_never_replaced(tiny, model, tmp_path):
    """`--out /dev/full` was renamed over: for root, a CSV where the device had been. A device is now written to
    as it is (a full one: one line), and a pipe such as /dev/stdout works."""
    import stat

    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a /dev/full of the test's own
    except OSError:
        pytest.skip("cannot make a device node here (needs root and CAP_MKNOD)")
    line = one_line_error(zoolens("data", "split", tiny, "--out", full), code=1)
    assert line == f"zoolens: error: {full}: cannot be written or read (No space left on device)"
    assert full.is_char_device()
    piped = zoolens("data", "split", tiny, "--out", "/dev/stdout")
    assert piped.returncode == 0 and piped.stdout.startswith("path,label,split\n")
    line = one_line_error(zoolens("evaluate", model, tiny, "--out", full))
    assert line == f"zoolens: error: {full}: is a file, not a folder; give a folder to write into"
    assert full.is_char_device()


def test_a_results_part_with_another_schema_is_named_and_nothing_is_changed(tiny, model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    results = tmp_path / "results"
    assert zoolens("predict", model, tiny, "--out", results).returncode == 0
    pq.write_table(pa.table({"path": [1, 2], "folder": [3, 4]}), results / "part-00000.parquet")
    before = tree_snapshot(results)
    line = one_line_error(zoolens("predict", model, tiny, "--out", results))
    assert line == (f"zoolens: error: {results / 'part-00000.parquet'}: not a zoolens results part (has int64 in its "
                    "'path' column, zoolens writes string); move it out of this --out folder or choose another")
    assert tree_snapshot(results) == before


@pytest.mark.parametrize("command", [
    ["data", "inspect", "{data}", "--out", "{data}/summary"],
    ["evaluate", "{model}", "{data}", "--out", "{data}/evaluation"],
    ["explain", "{model}", "{data}/cats", "--out", "{data}/cats/why"],
    ["report", "{model}", "--data", "{data}", "--out", "{data}/report.html"],
])
def test_outputs_inside_the_data_folder_are_refused_before_any_work(command, data, model):
    before = tree_snapshot(data)
    args = [part.format(model=model, data=data) for part in command]
    line = one_line_error(zoolens(*args))
    assert "is inside the photo folder" in line or "is inside the data folder" in line
    assert tree_snapshot(data) == before


# ---- a model folder that points outside the data -------------------------------------------------------
def tampered_copy(model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model, tmp_path / "sent-model"))


@pytest.mark.parametrize("row", ["../outside/secret.jpg", "/etc/passwd", "cats/../../outside/secret.jpg"])
def test_split_csv_rows_outside_the_data_folder_are_refused(row, tiny, model, tmp_path):
    sent = tampered_copy(model, tmp_path)
    meta = json.loads((sent / "zoolens.json").read_text())
    meta["data"]["root"] = str(tiny.resolve())  # so that evaluate uses its split.csv
    (sent / "zoolens.json").write_text(json.dumps(meta))
    with open(sent / "split.csv", "a", encoding="utf-8") as handle:
        handle.write(f"{row},cats,test\n")
    line = one_line_error(zoolens("evaluate", sent, tiny, "--out", tmp_path / "evaluation"))
    assert f"{row!r} is not a photo inside the data folder" in line and "split.csv: line " in line
    line = one_line_error(zoolens("train", tiny, "--out", tmp_path / "model", "--split", sent / "split.csv", *FAST))
    assert f"{row!r} is not a photo inside the data folder" in line
    assert not (tmp_path / "model").exists()


# Each case writes a report (4-5 s): "/" (the walk of the whole disk reported) in the fast tier, the others in the full
# suite.
@pytest.mark.parametrize("root", ["/", *(pytest.param(root, marks=pytest.mark.slow)
                                         for root in ("{home}", "{model_parent}", "{other}"))])
def test_a_recorded_data_root_that_is_not_this_models_data_is_never_walked(root, model, tiny, tmp_path, monkeypatch):
    """`"root": "/"` made `report` walk the whole disk: a recorded folder is used only when it holds exactly the
    model's class folders and not the home or model folder."""
    from zoolens.evaluation import report
    from zoolens.inference.model import Model

    other = tmp_path / "other"
    (other / "holidays").mkdir(parents=True)
    sent = tampered_copy(model, tmp_path)
    meta = json.loads((sent / "zoolens.json").read_text())
    meta["data"]["root"] = root.format(home=Path.home(), model_parent=tmp_path, other=other)
    (sent / "zoolens.json").write_text(json.dumps(meta))
    from zoolens.data import folders

    walked = []
    real_walk = folders.walk_files
    monkeypatch.setattr(folders, "walk_files", lambda root, *a: walked.append(Path(root)) or real_walk(root, *a))
    assert report.default_data(Model.load(sent)) is None
    out = report.write_report(sent, progress=False)
    assert walked == [] and "No photos to show" in out.read_text(encoding="utf-8")


def test_the_recorded_data_root_is_still_used_for_the_models_own_folder(model, tiny):
    from zoolens.evaluation.report import default_data
    from zoolens.inference.model import Model

    assert default_data(Model.load(model)) == Path(str(tiny.resolve()))


def test_open_set_json_of_a_sent_model_cannot_make_the_report_read_outside(model, tiny, tmp_path, monkeypatch):
    """open_set.json lists photo paths and grid file names: photos outside the data folder and grids outside the
    model folder are never opened."""
    from zoolens.evaluation import report

    secret = tmp_path / "private" / "me.jpg"
    secret.parent.mkdir()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(secret)
    sent = tampered_copy(model, tmp_path)
    (sent / "evaluation").mkdir(exist_ok=True)
    results = {"mode": "on", "known": {"photos": 3, "turned_away_count": 1, "turned_away_photos": [
        {"path": str(secret), "answer": "none of these"}]}, "unknown": [{"folder": str(secret.parent), "photos": 1,
        "accepted": 1.0,
        "accepted_photos": [{"path": str(secret), "answer": "cats", "confidence": 0.9}]}],
        "grids": {"open_set_known_turned_away": str(secret), "open_set_unknown_accepted": "../../private/me.jpg"}}
    (sent / "evaluation" / "open_set.json").write_text(json.dumps(results))
    opened = []
    real_open = report.open_image
    monkeypatch.setattr(report, "open_image", lambda path, *a, **k: opened.append(Path(path)) or real_open(path))
    from zoolens.inference.model import Model

    unknown = report.measured_unknown(Model.load(sent), sent / "evaluation" / "open_set.json", data=tiny)
    assert all(not g["shots"] and g["grid"] is None for g in unknown["galleries"])
    assert secret not in opened


def test_an_open_set_json_that_is_a_fifo_is_not_waited_on(model, tmp_path):
    from zoolens.evaluation.report import measured_unknown

    sent = tampered_copy(model, tmp_path)
    (sent / "evaluation").mkdir(exist_ok=True)
    os.mkfifo(sent / "evaluation" / "open_set.json")
    assert "not a regular file" in measured_unknown(None, sent / "evaluation" / "open_set.json")["problem"]


def test_a_study_reads_a_finished_runs_zoolens_json_through_the_schema(model, tmp_path):
    from zoolens.studies.runner import _finished
    from zoolens.training.config import TrainConfig

    sent = tampered_copy(model, tmp_path)
    meta = json.loads((sent / "zoolens.json").read_text())
    meta["preprocessing"]["input_size"] = "x"
    (sent / "zoolens.json").write_text(json.dumps(meta))
    assert _finished(sent, TrainConfig()) is None


def test_kfold_keeps_the_users_files_in_out_best_and_refuses_a_folder_that_is_not_a_model(tiny, model, tmp_path,
                                                                                           monkeypatch):
    from zoolens.studies.kfold import run_kfold
    from zoolens.training.config import TrainConfig

    """`kfold` swapped OUT/best for the best fold whole, and removed the other fold folders whole."""
    from zoolens.training import trainer

    out = tmp_path / "kfold"
    shutil.copytree(model, out / "best")
    (out / "best" / "notes.txt").write_text("my notes")
    for fold in ("fold-1", "fold-2"):  # whichever fold is best, its folder holds a file of the user's
        shutil.copytree(model, out / fold)
        (out / fold / "keep.txt").write_text("mine too")
    config = TrainConfig(image_size=64, epochs=3)
    summary = run_kfold(tiny, out, k=2, config=config, progress=False)
    assert (out / "best" / "notes.txt").read_text() == "my notes"
    assert (out / "best" / "zoolens.json").is_file() and summary["best_model"] == str(out / "best")
    for fold in ("fold-1", "fold-2"):  # its model went to best/ or was removed, the user's file stayed
        assert leftovers(out / fold) == {"keep.txt"}
    assert "keep.txt" not in leftovers(out / "best")

    for mine, folder in ((tmp_path / "mine", "best"), (tmp_path / "mine-too", "fold-2")):
        (mine / folder).mkdir(parents=True)
        (mine / folder / "thesis.tex").write_text("chapter 1")
        monkeypatch.setattr(trainer, "scan_folder", lambda *a, **k: pytest.fail("kfold started training"))
        with pytest.raises(ZoolensError, match=f"{folder}: exists and is not a zoolens model"):
            run_kfold(tiny, mine, k=2, config=config, progress=False)
        assert leftovers(mine) == {folder} and leftovers(mine / folder) == {"thesis.tex"}
