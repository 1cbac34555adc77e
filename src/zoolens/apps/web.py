"""`zoolens web`: the Streamlit app. Run by `streamlit run web.py -- [--model M] [--models-dir D] ...`.

Uploads are checked (bytes and pixels) and decoded from memory: nothing a client sends becomes a path,
and nothing is written to disk. Everything that knows about models goes through the zoolens API;
this file only lays out the page.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import importlib.util
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from zoolens.apps.common import IMAGENET_NAME, answer_line, explain_target, find_models, scores_note, side_by_side
from zoolens.choices import DEFAULT_MIN_CONFIDENCE, DEFAULT_OPEN_SET, OPEN_SET_MODES
from zoolens.data.images import PHOTO_FORMATS
from zoolens.inference.prediction import CLASS, ERROR, NONE_OF_THESE, NOT_SURE, Prediction, csv_text, failed

if TYPE_CHECKING:  # the review page's findings and decisions, imported where used (the page may never be opened)
    from zoolens.apps.review import Review
    from zoolens.data.corrections import Corrections
    from zoolens.evaluation.data_issues import Flag

MAX_UPLOAD_MB = 20
NOT_A_PHOTO = "not a photo this app can read (JPEG, PNG, WebP, BMP, GIF or TIFF)"
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel photo decodes to ~150 MB of RGB; beyond that, refuse
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
# Checked on the bytes, whatever the name says: Pillow's other readers (EPS runs Ghostscript, PSD, ICO, ...)
# are never reached from an upload.
UPLOAD_FORMATS = PHOTO_FORMATS
CLASSIFY_PAGE = "What is this animal?"
DOGS_PAGE = "Dog breeds"
REVIEW_PAGE = "Review labels"
REVIEW_PER_PAGE = 12
# The review page's keys: the focused photo's decisions, one key each (Streamlit reserves C and R).
REVIEW_KEYS = {"accept": "A", "exclude": "X", "keep": "K", "skip": "N"}
EXPLAIN_MODULE = "zoolens.evaluation.explain"

# Each verdict's look: a class is the only green answer; "none of these" is a neutral note, never a success.
VERDICT_STYLES = {CLASS: "zl-class", NOT_SURE: "zl-unsure", NONE_OF_THESE: "zl-none", ERROR: "zl-error"}
# The dog page's badges: only a dog (or a face) found is green; "neither" is a neutral note, an error red.
KIND_STYLES = {"neither": "zl-badge-none", "error": "zl-badge-error"}
COLOUR_KEY = ('<div class="zl-key"><span>Grad-CAM:</span><span class="zl-ramp"></span>'
              "<span>little attention → where the network looked most</span></div>")
OPEN_SET_HELP = ("Whether a trained model may answer “none of these” (a person, no animal, an animal unlike its "
                 "training photos): on, strict (turns more photos away) or off. ImageNet mode always says when "
                 "no animal is found.")

CSS = """
<style>
:root { --zl-green: #2f6f4f; --zl-amber: #a15c00; --zl-slate: #3d4f63; --zl-sand: #f6f4ef; --zl-ink: #1f2a24; }
.stApp { background: linear-gradient(180deg, var(--zl-sand) 0%, #ffffff 320px); }
.zl-hero h1 { font-size: 2.1rem; margin-bottom: 0; color: var(--zl-ink); letter-spacing: -0.02em; }
.zl-hero p { color: #56625b; margin-top: 0.2rem; }
.zl-card { background: #ffffff; border: 1px solid #e4e0d6; border-radius: 14px; padding: 0.8rem 1rem;
           box-shadow: 0 2px 10px rgba(31, 42, 36, 0.06); margin-bottom: 0.8rem; }
.zl-file { font-size: 0.78rem; color: #7a847e; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.zl-answer { font-size: 1.2rem; font-weight: 700; line-height: 1.35; margin: 0.2rem 0 0.5rem 0;
             padding: 0.45rem 0.7rem; border-radius: 8px; border-left: 5px solid; }
.zl-answer.zl-class { color: var(--zl-green); background: #e7f1eb; border-color: var(--zl-green); }
.zl-answer.zl-unsure { color: var(--zl-amber); background: #fbf1e2; border-color: var(--zl-amber); }
.zl-answer.zl-none { color: var(--zl-slate); background: #eaeef3; border-color: #7d8da1; font-size: 1.05rem; }
.zl-answer.zl-error { color: #b3261e; background: #fbeceb; border-color: #b3261e; font-size: 1rem; }
.zl-answer.zl-message { font-size: 1.05rem; line-height: 1.45; color: var(--zl-ink); background: #ffffff;
                        border-color: #c9c4b8; }
.zl-bars-note { font-size: 0.75rem; color: #7a847e; margin-top: 0.3rem; }
.zl-bar { display: flex; align-items: center; gap: 0.5rem; font-size: 0.85rem; margin: 0.15rem 0; }
.zl-bar-label { flex: 0 0 42%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.zl-bar-track { flex: 1 1 auto; min-width: 3rem; background: #eef0ec; border-radius: 6px; height: 0.7rem;
                overflow: hidden; }
.zl-bar-fill { background: linear-gradient(90deg, #4f9a72, var(--zl-green)); height: 100%; border-radius: 6px; }
.zl-unsure-bars .zl-bar-fill { background: #d49a4a; }
.zl-none-bars .zl-bar-fill { background: #a3aebb; }
.zl-bar-value { flex: 0 0 3.6rem; text-align: right; font-variant-numeric: tabular-nums; color: #56625b; }
.zl-badge { display: inline-block; border-radius: 999px; padding: 0.05rem 0.6rem; font-size: 0.75rem;
            background: #e7f1eb; color: var(--zl-green); font-weight: 600; }
.zl-badge.zl-badge-none { background: #eaeef3; color: var(--zl-slate); }
.zl-badge.zl-badge-error { background: #fbeceb; color: #b3261e; }
.zl-key { display: flex; align-items: center; gap: 0.5rem; font-size: 0.8rem; color: #56625b; margin: 0.2rem 0 0.8rem; }
.zl-ramp { width: 160px; height: 0.6rem; border-radius: 3px; background: linear-gradient(90deg, #00007f, #0000ff,
           #007fff, #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000); }
section[data-testid="stSidebar"] { background: #eef0ec; }
</style>
"""


# ---- options ----------------------------------------------------------------------------------------
def parse_app_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zoolens web")
    parser.add_argument("--model", help="model folder to select first")
    parser.add_argument("--models-dir", default="runs", help="folder whose model folders the picker lists")
    parser.add_argument("--breeds", help="dog-breed model (default runs/dog-breeds)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    parser.add_argument("--open-set", default=DEFAULT_OPEN_SET, choices=OPEN_SET_MODES)
    parser.add_argument("--review", metavar="DATA", help="dataset whose flagged photos the review page shows")
    parser.add_argument("--corrections", metavar="FILE", help="where the review page writes its decisions")
    args, _unknown = parser.parse_known_args(argv)
    return args


def usable_models(models_dir: str | Path, first: str | None = None) -> tuple[list[str], list[str]]:
    """(model folders whose description reads and checks out, a note for each one skipped). A broken or
    tampered model folder must cost its own entry, not the page; the note names the folder, not the server path."""
    from zoolens.errors import ZoolensError
    from zoolens.inference.bundle import read_meta

    candidates = ([Path(first)] if first else []) + [p for p in find_models(models_dir) if str(p) != str(first)]
    usable, skipped = [], []
    for folder in candidates:
        try:
            read_meta(folder)
        except ZoolensError as error:
            skipped.append(f"{folder.name}: " + str(error).replace(str(folder), folder.name).split(": ", 1)[-1])
            continue
        usable.append(str(folder))
    return usable, skipped


def choice_classes(choice: str) -> list[str] | None:
    """The classes of a model folder in the picker, as people read them; None for ImageNet or one unreadable."""
    if choice == IMAGENET_NAME:
        return None
    from zoolens.errors import ZoolensError
    from zoolens.inference.bundle import read_meta

    try:
        meta = read_meta(Path(choice))  # checked: classes is a list of class names
    except ZoolensError:
        return None
    from zoolens.inference.model import recorded_names

    names = recorded_names(meta["classes"], meta)
    return [names.get(c, c) for c in meta["classes"]]


def choice_label(choice: str) -> str:
    """The picker's line for a model: short enough for the sidebar (its classes are listed below it)."""
    classes = choice_classes(choice)
    if choice == IMAGENET_NAME or classes is None:
        return choice if choice == IMAGENET_NAME else Path(choice).name
    return f"{Path(choice).name} ({len(classes)} classes)"


def describe_choice(choice: str) -> str:
    classes = choice_classes(choice)
    if classes is None:
        return choice_label(choice)
    shown = ", ".join(classes[:4]) + (", …" if len(classes) > 4 else "")
    return f"{Path(choice).name} — {len(classes)} classes ({shown})"


# ---- uploads ------------------------------------------------------------------------------------------
@dataclass
class Upload:
    name: str  # the client's file name: shown (escaped), never used as a path
    data: bytes
    problem: str | None = None


def check_upload(name: str, data: bytes) -> Upload:
    """Refuse what is too big, not an image, or has too many pixels, before anything decodes it fully."""
    if len(data) > MAX_UPLOAD_BYTES:
        return Upload(name, b"", f"larger than {MAX_UPLOAD_MB} MB")
    if not data:
        return Upload(name, b"", "empty file")
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError:
        return Upload(name, b"", f"too many pixels (at most {MAX_PIXELS // 1_000_000} megapixels)")
    except Exception:  # Pillow raises many kinds for hostile or broken data
        return Upload(name, b"", NOT_A_PHOTO)
    if width * height > MAX_PIXELS:
        return Upload(name, b"", f"too many pixels ({width}×{height}; at most {MAX_PIXELS // 1_000_000} megapixels)")
    return Upload(name, data)


def classify_upload(predictor, upload: Upload, top_k: int, min_confidence: float,
                    open_set: str = DEFAULT_OPEN_SET) -> Prediction:
    """The answer for one upload, named after the client's file; a refused upload is an error answer."""
    if upload.problem:
        return failed(upload.name, upload.problem)
    prediction = predictor.predict([upload.data], top_k=top_k, min_confidence=min_confidence, open_set=open_set)[0]
    prediction.source = upload.name
    return prediction


def classify_uploads(classify, uploads: list[Upload], on_progress=None) -> list[Prediction]:
    """`classify(upload) -> Prediction` for each upload in turn, reporting progress after each."""
    results = []
    for n, upload in enumerate(uploads):
        results.append(classify(upload))
        if on_progress:
            on_progress(n + 1, len(uploads))
    return results


def bars_html(top: list[tuple[str, float]]) -> str:
    rows = []
    for label, probability in top:
        rows.append(
            f'<div class="zl-bar"><span class="zl-bar-label" title="{html_text(label)}">{html_text(label)}</span>'
            f'<div class="zl-bar-track"><div class="zl-bar-fill" style="width:{probability * 100:.1f}%"></div></div>'
            f'<span class="zl-bar-value">{probability:.1%}</span></div>'
        )
    return "".join(rows)


def answer_class(prediction: Prediction) -> str:
    return f"zl-answer {VERDICT_STYLES[prediction.verdict]}"


def answer_html(prediction: Prediction, imagenet: bool) -> str:
    """The answer box; `data-verdict` names its verdict (class, not sure, none of these, error) for scripts."""
    return (f'<div class="{answer_class(prediction)}" data-testid="zl-answer" '
            f'data-verdict="{html_text(prediction.verdict)}">{html_text(answer_line(prediction, imagenet))}</div>')


def scores_html(prediction: Prediction, imagenet: bool) -> str:
    """The top-k bars, muted (with a note saying so) when they are not the answer."""
    note = scores_note(prediction, imagenet)
    if note is None:
        return bars_html(prediction.named_top)
    muted = "zl-none-bars" if prediction.verdict == NONE_OF_THESE else "zl-unsure-bars"
    return f'<div class="zl-bars-note">{note}</div><div class="{muted}">{bars_html(prediction.named_top)}</div>'


def explain_available() -> bool:
    return importlib.util.find_spec(EXPLAIN_MODULE) is not None


# ---- text from outside (class names, file names, messages naming them) ------------------------------------
# What Streamlit's Markdown (CommonMark, GFM, its own codes) would make of plain text: links and images ([ ] ! < >),
# emphasis, code, strikethrough, tables, headings, LaTeX, entities: escaped with a backslash.
MARKDOWN_SIGNS = re.compile(r"[\\`*_~\[\]<>#|$!&]|^[-+]")
LIST_NUMBER = re.compile(r"^(\d+)([.)])")  # "1. cats" would start a numbered list
# What it finds in the text after escapes are read: bare addresses (http://, www., a@b.c) become links, `:cat:` an
# emoji: a word joiner (invisible) after the colon, `www` or `@` keeps them apart.
AFTER_ESCAPES = re.compile(r"(:(?=\S)|www(?=\.)|@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def as_text(text: object) -> str:
    """Text for an element that reads Markdown (st.caption, st.error, st.toast, a button's label, ...) shown as
    itself: a class name `![x](http://…)` or `[click](…)` stays those characters, never an image, a link, bold,
    an emoji or LaTeX; on one line. Ordinary names (letters, spaces, commas, full stops) are left as they are."""
    one_line = " ".join(str(text).split())
    escaped = MARKDOWN_SIGNS.sub(lambda sign: "\\" + sign[0], AFTER_ESCAPES.sub(r"\1" + WORD_JOINER, one_line))
    return LIST_NUMBER.sub(r"\1\\\2", escaped)


def html_text(text: object) -> str:
    """Text inside the page's own HTML (st.markdown(..., unsafe_allow_html=True)): escaped, and on one line, since
    a blank line would end the HTML block and let Markdown read what follows."""
    return html.escape(" ".join(str(text).split()))


# ---- the page -----------------------------------------------------------------------------------------
def main() -> None:
    import streamlit as st

    args = parse_app_args(sys.argv[1:])
    st.set_page_config(page_title="zoolens", page_icon="🐾", layout="wide")
    st.markdown(CSS, unsafe_allow_html=True)

    @st.cache_resource(show_spinner="Loading the model…")
    def load_predictor(choice: str):
        from zoolens.apps.common import Predictor

        return Predictor(None if choice == IMAGENET_NAME else choice)

    # Copies out: a rerun (a slider, the Grad-CAM toggle, a download) reuses the answers, not the network.
    @st.cache_data(show_spinner=False, max_entries=2000)
    def cached_result(choice: str, name: str, data: bytes, problem: str | None, top_k: int, min_confidence: float,
                      open_set: str) -> Prediction:
        return classify_upload(load_predictor(choice), Upload(name, data, problem), top_k, min_confidence, open_set)

    @st.cache_resource(show_spinner="Loading the dog-breed app…")
    def load_dog_app(breeds: str | None):
        from zoolens.apps.dogs import DogBreedApp, find_breeds_model

        return DogBreedApp(find_breeds_model(breeds))

    @st.cache_resource(show_spinner="Looking for photos worth a look (features, out-of-fold heads)…")
    def load_review(data: str, corrections: str | None):
        from zoolens.apps.review import Review

        review = Review(data, corrections)
        review.flags()
        return review

    with st.sidebar:
        st.markdown("### zoolens")
        page = st.radio("Page", [CLASSIFY_PAGE, DOGS_PAGE] + ([REVIEW_PAGE] if args.review else []), key="page")

    if page == DOGS_PAGE:
        dogs_page(st, args, load_dog_app)
    elif page == REVIEW_PAGE:
        review_page(st, args, load_review)
    else:
        classify_page(st, args, load_predictor, cached_result)


def answer_options(st, args, imagenet: bool = False) -> tuple[float, str]:
    """The sidebar's two answer controls, together: the "not sure" threshold and the open-set check."""
    with st.sidebar:
        min_confidence = st.slider("“Not sure” below", 0.0, 1.0, float(args.min_confidence), 0.05,
                                   key="min_confidence")
        open_set = st.radio("Open-set check (“none of these”)", OPEN_SET_MODES,
                            index=OPEN_SET_MODES.index(args.open_set), key="open_set", horizontal=True,
                            help=OPEN_SET_HELP, disabled=imagenet)
    return min_confidence, open_set


def uploads_from(files) -> list[Upload]:
    return [check_upload(f.name, f.getvalue()) for f in files or []]


def classify_page(st, args, load_predictor, cached_result) -> None:
    found, skipped = usable_models(args.models_dir, args.model)
    choices = found + [IMAGENET_NAME]
    with st.sidebar:
        choice = st.selectbox("Model", choices, format_func=choice_label, key="model",
                              help=f"Model folders found in {args.models_dir}/, or the pretrained ImageNet classes")
        if (classes := choice_classes(choice)) is not None:
            st.caption("Classes: " + as_text(", ".join(classes)))
        for note in skipped:
            st.caption(f"Skipped {as_text(note)}")
    imagenet = choice == IMAGENET_NAME
    min_confidence, open_set = answer_options(st, args, imagenet)
    with st.sidebar:
        top_k = st.slider("Top-k", 1, 10, 3, key="top_k")
        gradcam = st.toggle("Grad-CAM heat map", key="gradcam",
                            help="Where in the photo the network looked") if explain_available() else False

    st.markdown('<div class="zl-hero"><h1>What is this animal?</h1>'
                f'<p>Drop photos below. Model: <b>{html_text(describe_choice(choice))}</b></p></div>',
                unsafe_allow_html=True)
    files = st.file_uploader("Photos", type=UPLOAD_TYPES, accept_multiple_files=True, key="photos",
                             help=f"Up to {MAX_UPLOAD_MB} MB each")
    if not files:
        st.caption("JPEG, PNG, WebP, … up to 20 MB each. Photos are read in memory and never stored.")
        return
    try:
        predictor = load_predictor(choice)
    except Exception as error:  # a broken model folder: say so on the page (its name, not the server path)
        name = Path(choice).name
        st.error(as_text(f"Cannot load {name}: {str(error).replace(str(Path(choice).parent) + '/', '')}"))
        return
    uploads = uploads_from(files)
    bar = st.progress(0.0, text=f"Classifying {len(uploads)} photo(s)…")

    def classify(upload: Upload) -> Prediction:
        return cached_result(choice, upload.name, upload.data, upload.problem, top_k, min_confidence, open_set)

    results = classify_uploads(classify, uploads, on_progress=lambda done, total: bar.progress(
        done / total, text=f"Classified {done} of {total}"))
    bar.empty()
    st.download_button("Download results (CSV)", csv_text(results, top_k), file_name="zoolens-predictions.csv",
                       mime="text/csv", key="download", on_click="ignore")
    explanations = explain_uploads(st, predictor, uploads) if gradcam else {}
    if explanations:
        st.download_button("Download the heat maps (ZIP of PNGs)", heat_maps_zip(uploads, explanations),
                           file_name="zoolens-gradcam.zip", mime="application/zip", key="download_maps",
                           on_click="ignore")
        st.markdown(COLOUR_KEY, unsafe_allow_html=True)
    for n, upload, prediction, column in in_rows(st, list(zip(uploads, results))):
        with column:
            show_prediction(st, upload, prediction, imagenet, explanations.get(n))


def in_rows(st, items: list[tuple], per_row: int = 3):
    """(position, *item, column) in upload order, row by row: read left to right, then down."""
    for start in range(0, len(items), per_row):
        columns = st.columns(per_row)
        for offset, item in enumerate(items[start : start + per_row]):
            yield (start + offset, *item, columns[offset])


def heat_maps_zip(uploads: list[Upload], overlays: dict) -> bytes:
    """The Grad-CAM overlays as PNGs in one ZIP, named after the uploads (`cat.jpg` -> `cat-gradcam.png`)."""
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as files:
        for n, (_, overlay) in sorted(overlays.items()):
            png = io.BytesIO()
            overlay.save(png, format="PNG")
            files.writestr(f"{n + 1:03d}-{safe_stem(uploads[n].name)}-gradcam.png", png.getvalue())
    return archive.getvalue()


def safe_stem(name: str) -> str:
    """A client's file name as a plain file name inside the ZIP: no folders, no odd characters."""
    stem = Path(name.replace("\\", "/")).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80] or "photo"



def explain_uploads(st, predictor, uploads: list[Upload]) -> dict:
    """(the photo as the network saw it, its Grad-CAM overlay) by upload position; an explainer that fails costs a
    warning, never the page."""
    usable = [(n, u) for n, u in enumerate(uploads) if not u.problem]
    try:
        from zoolens.evaluation.explain import explain

        explanations = explain(explain_target(predictor), [u.data for _, u in usable], method="gradcam")
        return {n: (e.image, e.overlay("gradcam")) for (n, _), e in zip(usable, explanations) if not e.error}
    except Exception as error:
        st.warning(as_text(f"Grad-CAM is not available here: {error}"))
        return {}


def show_prediction(st, upload: Upload, prediction: Prediction, imagenet: bool, explained=None) -> None:
    st.markdown(f'<div class="zl-card"><div class="zl-file">{html_text(upload.name)}</div>'
                f"{answer_html(prediction, imagenet)}{scores_html(prediction, imagenet)}</div>",
                unsafe_allow_html=True)
    if upload.problem:
        return
    if explained is not None:
        st.image(side_by_side(*explained), caption="the photo, and where the network looked (Grad-CAM)",
                 width="stretch")
    else:
        st.image(upload.data, width="stretch")


def dogs_page(st, args, load_dog_app) -> None:
    from zoolens.apps.dogs import TRAIN_BREEDS_COMMAND

    min_confidence, open_set = answer_options(st, args)

    st.markdown('<div class="zl-hero"><h1>Which dog breed?</h1><p>A dog gets its breed; a human gets the breed '
                "they look like.</p></div>", unsafe_allow_html=True)
    try:
        app = load_dog_app(args.breeds)
    except Exception as error:
        st.info(f"{as_text(error)}\n\nTrain the breed model once with `{TRAIN_BREEDS_COMMAND}`.")
        return
    files = st.file_uploader("Photos of dogs or people", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key="dog_photos", help=f"Up to {MAX_UPLOAD_MB} MB each")
    if not files:
        return
    from zoolens.apps.dogs import DogReport, reports_csv

    uploads = uploads_from(files)
    bar = st.progress(0.0, text="Looking for dogs and faces…")
    reports = []
    for n, upload in enumerate(uploads):
        if upload.problem:
            reports.append(DogReport(upload.name, f"refused: {upload.problem}", error=upload.problem))
        else:
            reports.append(app.identify_one(upload.data, min_confidence=min_confidence, open_set=open_set))
            reports[-1].source = upload.name
        bar.progress((n + 1) / len(uploads), text=f"Done {n + 1} of {len(uploads)}")
    bar.empty()
    st.download_button("Download results (CSV)", reports_csv(reports), file_name="zoolens-dog-breeds.csv",
                       mime="text/csv", key="download_dogs", on_click="ignore")
    for _, upload, report, column in in_rows(st, list(zip(uploads, reports))):
        with column:
            top = report.breed_top or report.resembles_top
            st.markdown(f'<div class="zl-card"><div class="zl-file">{html_text(upload.name)}</div>'
                        f'<span class="zl-badge {KIND_STYLES.get(report.kind, "")}">{html_text(report.kind)}</span>'
                        f'<div class="zl-answer zl-message{" zl-error" if report.error else ""}" '
                        f'data-testid="zl-answer">{html_text(report.message)}</div>'
                        f"{bars_html(top)}</div>", unsafe_allow_html=True)
            if not upload.problem:
                st.image(upload.data, width="stretch")


# ---- review labels ---------------------------------------------------------------------------------
DECISION_TEXT = {"relabel": "relabel to {label}", "exclude": "left out", "keep": "kept as it is", "": "not decided"}


def decision_text(review: Review, action: str, label: str) -> str:
    return DECISION_TEXT[action].format(label=review.names.get(label, label))


def flag_caption(review: Review, flag: Flag) -> str:
    from zoolens.evaluation.data_issues import IN_DOUBT, MISLABELLED

    name = review.names.get(flag.given, flag.given)
    if flag.reason in (MISLABELLED, IN_DOUBT):
        suggested = review.names.get(flag.suggested, flag.suggested)
        looks = "looks like" if flag.reason == MISLABELLED else "label in doubt: may be"
        return f"filed as {name}, {looks} {suggested} ({flag.score:.0%} sure it is not {name})"
    return flag.reason + (f" (filed as {name})" if name else "")


def review_page(st, args, load_review) -> None:
    """The flagged photos of --review DATA in a grid, most likely mislabelled first, of the kinds chosen (and only the
    undecided ones, if asked); the first undecided one on top with its keys (A: take the suggestion, X: exclude,
    K: keep, N: next); each decision written to the corrections file at once; "Retrain now" compares a model on the
    labels as they were with one on the corrected labels."""
    st.markdown('<div class="zl-hero"><h1>Review labels</h1><p>Photos of your dataset worth a second look. '
                "Decisions go to a corrections file; the photos are never changed.</p></div>", unsafe_allow_html=True)
    try:
        review = load_review(args.review, args.corrections)
        flags, made = review.flags(), review.decisions()
    except Exception as error:  # a folder that is no dataset, a corrections file edited by hand into nonsense
        st.error(as_text(error))
        return
    st.caption(as_text(f"{len(flags)} photos flagged in {Path(args.review).name}/ · decisions in {review.corrections} "
                       f"({len(made.relabel)} relabelled, {len(made.exclude)} excluded, {len(made.keep)} kept) · "
                       f"train with them: zoolens train DATA --corrections {review.corrections}"))
    if not flags:
        st.success("Nothing flagged: no photo looks mislabelled, copied across the split or out of place.")
        return
    retrain_panel(st, review, made)
    decided = made.decided()
    flags = chosen_flags(st, flags, decided)
    if not flags:
        st.info("No flagged photo of the kinds chosen is left to show.")
        return
    skipped = st.session_state.setdefault("review_skipped", set())
    focus = next((flag for flag in flags if flag.path not in decided and flag.path not in skipped), None)
    if focus is not None:
        focused_flag(st, review, focus, skipped)
    pages = max(1, -(-len(flags) // REVIEW_PER_PAGE))
    if st.session_state.get("review_page", 1) > pages:  # fewer pages once other kinds are chosen
        st.session_state["review_page"] = pages
    number = st.number_input("Page of flagged photos", 1, pages, 1, key="review_page") if pages > 1 else 1
    start = (number - 1) * REVIEW_PER_PAGE
    for _, flag, column in in_rows(st, [(flag,) for flag in flags[start:start + REVIEW_PER_PAGE]], per_row=3):
        with column:
            flag_card(st, review, flag, made)


def chosen_flags(st, flags: list[Flag], decided: set[str]) -> list[Flag]:
    """The kinds of flag to go through (each with its count), and whether to hide the photos already decided."""
    from collections import Counter

    from zoolens.apps.review import FLAG_KINDS, flag_kind, shown_flags

    counts = Counter(flag_kind(flag) for flag in flags)
    kinds = [kind for kind in FLAG_KINDS if counts[kind]]
    filters, undecided = st.columns([3, 1])
    chosen = filters.pills("Show", kinds, selection_mode="multi", default=kinds, key="review_kinds",
                           format_func=lambda kind: f"{FLAG_KINDS[kind]} ({counts[kind]})")
    hide = decided if undecided.toggle("Only those not decided yet", key="review_undecided") else set()
    return shown_flags(flags, chosen, hide)


def focused_flag(st, review: Review, flag: Flag, skipped: set[str]) -> None:
    suggested = flag.suggested
    with st.container(border=True):
        picture, controls = st.columns([1, 2])
        with picture:
            show_photo(st, review, flag)
        with controls:
            st.markdown(f"**Next up:** {as_text(flag.path)}  \n{as_text(flag_caption(review, flag))}")
            buttons = st.columns(4)
            if suggested and buttons[0].button(f"Relabel to {as_text(review.names.get(suggested, suggested))}", type="primary",
                                               key="focus_accept", shortcut=REVIEW_KEYS["accept"]):
                review.decide(flag, "relabel", suggested)
                st.rerun()
            if buttons[1].button("Exclude", key="focus_exclude", shortcut=REVIEW_KEYS["exclude"]):
                review.decide(flag, "exclude")
                st.rerun()
            if buttons[2].button("Keep as it is", key="focus_keep", shortcut=REVIEW_KEYS["keep"]):
                review.decide(flag, "keep")
                st.rerun()
            if buttons[3].button("Next", key="focus_skip", shortcut=REVIEW_KEYS["skip"]):
                skipped.add(flag.path)
                st.rerun()
            st.caption("Keys: " + " · ".join(f"{key} {what}" for what, key in (
                ("take the suggestion", "A"), ("exclude", "X"), ("keep", "K"), ("next", "N"))))


def show_photo(st, review: Review, flag: Flag) -> None:
    from zoolens.data.images import ImageError, open_image

    try:
        image = open_image(review.photo(flag), min_side=512)
    except ImageError as error:
        st.caption(f"cannot show it: {as_text(error.reason)}")
        return
    image.thumbnail((512, 512))
    st.image(image, width="stretch")


def flag_card(st, review: Review, flag: Flag, made: Corrections) -> None:
    from zoolens.apps.review import believed_class

    action, label = made.decision(flag.path)
    key = hashlib.sha1(flag.path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    with st.container(border=True):
        st.markdown(f'<div class="zl-file">{html_text(flag.path)}</div>', unsafe_allow_html=True)
        show_photo(st, review, flag)
        st.caption(as_text(flag_caption(review, flag)))
        st.markdown(f'<span class="zl-badge{"" if action else " zl-badge-none"}" data-testid="zl-decision">'
                    f"{html_text(decision_text(review, action, label))}</span>", unsafe_allow_html=True)
        classes = review.classes
        current = believed_class(flag, label, classes)
        chosen = st.selectbox("Class", classes, index=classes.index(current),
                              format_func=lambda name: review.names.get(name, name), key=f"class_{key}",
                              label_visibility="collapsed")
        buttons = st.columns(3)
        if buttons[0].button("Relabel", key=f"relabel_{key}",
                             type="primary" if not action and flag.suggested else "secondary"):
            review.decide(flag, "relabel", chosen)
            st.rerun()
        if buttons[1].button("Exclude", key=f"exclude_{key}"):
            review.decide(flag, "exclude")
            st.rerun()
        if buttons[2].button("Keep", key=f"keep_{key}"):
            review.decide(flag, "keep")
            st.rerun()


def retrain_panel(st, review: Review, made: Corrections) -> None:
    """"Retrain now", "Accept the suggested fixes" for the photos not among the decisions `made`, and, once
    retrained, the two models' test accuracy side by side."""
    with st.container(border=True):
        left, right = st.columns([1, 3])
        if left.button("Retrain now", type="primary", key="retrain",
                       help="Train on the labels as they were and on the corrected ones (seconds: the features are "
                            "cached), both judged on the same test photos"):
            with st.spinner("Training two models on the cached features…"):
                st.session_state["review_comparison"] = review.retrain()
        fixes = review.undecided_fixes(made)
        if fixes and left.button(f"Accept the suggested fixes ({len(fixes)})", key="accept_fixes",
                                 help="For the training photos in doubt that you have not decided on: relabel each "
                                      "where the heads are sure of its class, leave it out where they are not "
                                      "(your own decisions stay as they are). Then retrain to see what they are "
                                      "worth."):
            from zoolens.errors import ZoolensError

            try:
                now = review.accept_suggested_fixes()
            except ZoolensError as error:  # the corrections file edited into nonsense while the page was open
                st.error(as_text(error))
                return
            st.toast(as_text(f"{len(fixes)} decisions written to {review.corrections} ({len(now.relabel)} relabelled, "
                             f"{len(now.exclude)} left out in all)"))
            st.rerun()
        comparison = st.session_state.get("review_comparison")
        if comparison is None:
            right.caption("Retrain to see what your corrections are worth: test accuracy before and after.")
            return
        before, after = right.columns(2)
        before.metric("Before: labels as they were", f"{comparison.before:.1%}",
                      help=f"{comparison.wrong_before} of {comparison.photos} test photos wrong")
        after.metric(f"After: {comparison.relabelled} relabelled, {comparison.excluded} excluded",
                     f"{comparison.after:.1%}", delta=f"{100 * (comparison.after - comparison.before):+.1f} points",
                     help=f"{comparison.wrong_after} of {comparison.photos} test photos wrong")
        right.caption(f"Both on the same {comparison.photos} test photos, with your corrections to their labels.")


if __name__ == "__main__":
    main()
