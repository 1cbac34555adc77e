"""`zoolens desktop`: seed 000's Tkinter window on the zoolens API.

"Select Animal" opens a file dialog; the photo is shown fitted to the window with the answer under it, then
the top-3 as bars. "Select Folder" answers for every photo of a folder, listed in a scrollable table; a row shows
its photo. The answer is a class (green), "not sure" below the threshold set beside the buttons (amber), or "none
of these" with its reason (slate: a person, no animal, an animal unlike the training photos), as the open-set
check chosen there allows; "Grad-CAM" shows where the network looked, beside the photo.
Loading a model and classifying run on one worker thread; results come back to the Tk thread through a
queue that `root.after` polls, so the window never freezes (Tk must only be touched from its own thread).
"""

from __future__ import annotations

import queue
import tkinter as tk
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tkinter import filedialog, ttk

from PIL import Image, ImageOps, ImageTk

from zoolens.apps.common import IMAGENET_NAME, Predictor, answer_line, gradcam_pair, scores_note
from zoolens.choices import DEFAULT_MIN_CONFIDENCE, DEFAULT_OPEN_SET, OPEN_SET_MODES
from zoolens.data.images import IMAGE_EXTENSIONS, open_image
from zoolens.errors import ZoolensError
from zoolens.inference.prediction import CLASS, ERROR, NONE_OF_THESE, NOT_SURE, folder_photos

TOP_K = 3
POLL_MS = 40
PHOTO_TYPES = [("Photos", " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))), ("All files", "*")]
BACKGROUND = "#f6f4ef"
ACCENT = "#2f6f4f"
UNSURE = "#a15c00"
NONE = "#3d4f63"
PROBLEM = "#b3261e"
# Each verdict's colour, for the answer and its bars: a class is the only green answer.
VERDICT_COLOURS = {CLASS: ACCENT, NOT_SURE: UNSURE, NONE_OF_THESE: NONE, ERROR: PROBLEM}
VERDICT_STYLES = {CLASS: "Answer", NOT_SURE: "Unsure", NONE_OF_THESE: "None", ERROR: "Problem"}
START_TEXT = ("No photo yet.\n\n“Select Animal”: what one photo shows\n“Select Folder”: every photo in a folder, "
              "listed")
GRADCAM_KEY = "left: the photo as the network saw it · right: Grad-CAM, red where it looked most, blue least"
BAR_COLOURS = {CLASS: "#4f9a72", NOT_SURE: "#d49a4a", NONE_OF_THESE: "#a3aebb", ERROR: "#a3aebb"}


class DesktopApp:
    def __init__(self, root: tk.Tk, model: str | Path | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 backbone: str = "mobilenet_v2", open_set: str = DEFAULT_OPEN_SET):
        if open_set not in OPEN_SET_MODES:
            raise ZoolensError(f"open_set must be one of {', '.join(OPEN_SET_MODES)}, not {open_set!r}")
        self.root = root
        self.threshold = tk.DoubleVar(root, value=min_confidence)  # "not sure" below this confidence
        self._last_threshold = min_confidence
        self.open_set = tk.StringVar(root, value=open_set)
        self.gradcam = tk.BooleanVar(root, value=False)
        self.last_path: Path | None = None  # the photo shown, asked again when the open-set check changes
        self.last_folder: Path | None = None  # the folder listed, when the last question was a folder
        self.folder_results: list = []  # (path, prediction) per row of the results list
        self.folder_summary = ""  # "13 photos: panda 10, none of these 3"
        self.backbone = backbone
        self.predictor: Predictor | None = None
        self.photo: Image.Image | None = None  # the photo shown, at full size; refitted when the window resizes
        self.shown: ImageTk.PhotoImage | None = None  # Tk keeps no reference of its own
        self.last_prediction = None
        self.busy = False
        self.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoolens-desktop")
        self.results: queue.Queue = queue.Queue()
        self._build_window()
        self.root.after(POLL_MS, self._poll_results)
        self.load_model(model)

    # ---- layout ------------------------------------------------------------------------------
    def _build_window(self) -> None:
        root = self.root
        root.title("zoolens")
        root.geometry("560x680")
        root.minsize(380, 480)
        root.configure(background=BACKGROUND)
        root.protocol("WM_DELETE_WINDOW", self.exit)
        style = ttk.Style(root)
        for verdict, name in VERDICT_STYLES.items():
            size = 16 if verdict in (CLASS, NOT_SURE) else 15
            style.configure(f"{name}.TLabel", font=("DejaVu Sans", size, "bold"), background=BACKGROUND,
                            foreground=VERDICT_COLOURS[verdict])
            style.configure(f"{name}.Horizontal.TProgressbar", background=BAR_COLOURS[verdict])
        style.configure("Status.TLabel", font=("DejaVu Sans", 9), background=BACKGROUND, foreground="#555555")
        style.configure("TLabel", background=BACKGROUND)
        style.configure("TFrame", background=BACKGROUND)

        menu = tk.Menu(root)
        file_menu = tk.Menu(menu, tearoff=False)
        file_menu.add_command(label="Select Animal…", command=self.select_animal)
        file_menu.add_command(label="Open model…", command=self.open_model_dialog)
        file_menu.add_command(label="Use ImageNet classes", command=lambda: self.load_model(None))
        file_menu.add_separator()
        file_menu.add_command(label="Exit", command=self.exit)
        menu.add_cascade(label="File", menu=file_menu)
        root.configure(menu=menu)
        self.file_menu = file_menu

        top = ttk.Frame(root, padding=(12, 12, 12, 2))
        top.pack(fill="x")
        self.select_button = ttk.Button(top, text="Select Animal", command=self.select_animal)
        self.select_button.pack(side="left")
        self.folder_button = ttk.Button(top, text="Select Folder", command=self.select_folder)
        self.folder_button.pack(side="left", padx=(6, 0))
        self.gradcam_box = ttk.Checkbutton(top, text="Grad-CAM", variable=self.gradcam,
                                           command=self._answer_settings_changed)
        self.gradcam_box.pack(side="right")
        options = ttk.Frame(root, padding=(12, 2, 12, 4))
        options.pack(fill="x")
        ttk.Label(options, text="Open-set check:").pack(side="left", padx=(0, 4))
        self.open_set_box = ttk.Combobox(options, textvariable=self.open_set, values=OPEN_SET_MODES, state="readonly",
                                         width=7)
        self.open_set_box.pack(side="left")
        self.open_set_box.bind("<<ComboboxSelected>>", lambda event: self._answer_settings_changed())
        ttk.Label(options, text="“Not sure” below:").pack(side="left", padx=(14, 4))
        self.threshold_box = ttk.Spinbox(options, from_=0.0, to=1.0, increment=0.05, textvariable=self.threshold,
                                         width=5, format="%.2f", command=self._answer_settings_changed)
        self.threshold_box.pack(side="left")
        self.threshold_box.bind("<Return>", lambda event: self._answer_settings_changed())
        # A line of its own: "Model: ImageNet (1000 classes, no training)" does not fit beside the controls.
        self.model_label = ttk.Label(root, text="", style="Status.TLabel")
        self.model_label.pack(fill="x", padx=12)

        self.image_area = tk.Label(root, background="#e4e0d6", text=START_TEXT, foreground="#555555",
                                   font=("DejaVu Sans", 11), justify="center")
        self.image_area.pack(fill="both", expand=True, padx=12, pady=4)
        self.image_area.bind("<Configure>", lambda event: self._fit_photo())
        self.key_label = ttk.Label(root, text="", style="Status.TLabel", anchor="center")
        self.key_label.pack(fill="x", padx=12)

        self.answer_label = ttk.Label(root, text="", style="Answer.TLabel", anchor="center", justify="center",
                                      wraplength=520)
        self.answer_label.pack(fill="x", padx=12, pady=(6, 2))

        self.scores_label = ttk.Label(root, text="", style="Status.TLabel", anchor="w")
        self.scores_label.pack(fill="x", padx=12)
        bars = ttk.Frame(root, padding=(12, 0))
        bars.pack(fill="x")
        bars.columnconfigure(1, weight=1)
        self.bar_names, self.bars, self.bar_values = [], [], []
        for row in range(TOP_K):
            name = ttk.Label(bars, text="", width=22, anchor="w")
            bar = ttk.Progressbar(bars, maximum=100.0, mode="determinate")
            value = ttk.Label(bars, text="", width=7, anchor="e")
            name.grid(row=row, column=0, sticky="w", pady=1)
            bar.grid(row=row, column=1, sticky="ew", padx=6, pady=1)
            value.grid(row=row, column=2, sticky="e", pady=1)
            self.bar_names.append(name)
            self.bars.append(bar)
            self.bar_values.append(value)

        # Shown once a folder is classified: every photo's answer, in the folder's order; a row shows its photo.
        self.list_frame = ttk.Frame(root, padding=(12, 6, 12, 0))
        self.results_list = ttk.Treeview(self.list_frame, columns=("photo", "answer"), show="headings", height=6,
                                         selectmode="browse")
        self.results_list.heading("photo", text="photo")
        self.results_list.heading("answer", text="answer")
        self.results_list.column("photo", width=170, anchor="w")
        self.results_list.column("answer", width=330, anchor="w")
        scroll = ttk.Scrollbar(self.list_frame, orient="vertical", command=self.results_list.yview)
        self.results_list.configure(yscrollcommand=scroll.set)
        self.results_list.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.results_list.bind("<<TreeviewSelect>>", lambda event: self._row_selected())

        bottom = ttk.Frame(root, padding=(12, 6, 12, 12))
        bottom.pack(fill="x")
        self.status_label = ttk.Label(bottom, text="", style="Status.TLabel")
        self.status_label.pack(side="left")
        ttk.Button(bottom, text="Exit", command=self.exit).pack(side="right")

    # ---- actions (Tk thread) -----------------------------------------------------------------
    def select_animal(self) -> None:
        path = filedialog.askopenfilename(parent=self.root, title="Select Animal", filetypes=PHOTO_TYPES)
        if path:
            self.classify_path(path)

    def select_folder(self) -> None:
        folder = filedialog.askdirectory(parent=self.root, title="Select a folder of photos")
        if folder:
            self.classify_folder(folder)

    @property
    def min_confidence(self) -> float:
        """The "not sure" threshold as set beside the buttons (a half-typed number: the last one that read)."""
        try:
            self._last_threshold = min(1.0, max(0.0, float(self.threshold.get())))
        except (tk.TclError, ValueError):
            pass
        return self._last_threshold

    def open_model_dialog(self) -> None:
        folder = filedialog.askdirectory(parent=self.root, title="Open model folder (holding zoolens.json)")
        if folder:
            self.load_model(folder)

    def load_model(self, model: str | Path | None) -> None:
        name = Path(model).name if model else IMAGENET_NAME
        self._set_busy(True, f"Loading {name}…")

        def load():
            # Set on the worker thread: jobs run in order, so the next classification already uses it.
            self.predictor = Predictor(model, backbone=self.backbone)
            return self.predictor

        self._submit("model", load)

    def classify_path(self, path: str | Path) -> None:
        """What "Select Animal" does once a file is chosen; returns at once, the answer arrives later."""
        if self.predictor is None and not self.busy:
            self._set_status("No model loaded: File > Open model…")
            return
        path = Path(path)
        self.last_path, self.last_folder = path, None
        self._set_busy(True, f"Classifying {path.name}…")
        self.answer_label.configure(text="…", style="Answer.TLabel")
        min_confidence, open_set, gradcam = self.min_confidence, self.open_set.get(), self.gradcam.get()  # Tk thread

        def classify():
            predictor = self._current_predictor()
            prediction = predictor.predict([path], top_k=TOP_K, min_confidence=min_confidence, open_set=open_set)[0]
            return self._picture(predictor, path, gradcam), prediction, predictor.is_imagenet

        self._submit("prediction", classify)

    def classify_folder(self, folder: str | Path) -> None:
        """What "Select Folder" does: every photo in the folder (and below it) answered, listed in order."""
        if self.predictor is None and not self.busy:
            self._set_status("No model loaded: File > Open model…")
            return
        folder = Path(folder)
        self.last_folder = folder
        self._set_busy(True, f"Classifying the photos in {folder.name}…")
        min_confidence, open_set = self.min_confidence, self.open_set.get()

        def classify():
            predictor = self._current_predictor()
            paths = folder_photos(folder)  # as `zoolens predict` walks a folder
            if not paths:
                raise ZoolensError(f"no photos in {folder}")
            predictions = predictor.predict(paths, top_k=TOP_K, min_confidence=min_confidence, open_set=open_set)
            return list(zip(paths, predictions)), predictor.is_imagenet

        self._submit("folder", classify)

    def _row_selected(self) -> None:
        """A row of the results list chosen: its photo and answer shown (the answer is the one listed)."""
        chosen = self.results_list.selection()
        if not chosen or self.busy:
            return
        path, prediction = self.folder_results[int(chosen[0])]
        self.last_path = path
        gradcam, predictor = self.gradcam.get(), self.predictor
        self._set_busy(True, f"Showing {path.name}…")
        self._submit("prediction", lambda: (self._picture(predictor, path, gradcam), prediction,
                                            predictor.is_imagenet))

    @staticmethod
    def _picture(predictor: Predictor, path: Path, gradcam: bool) -> Image.Image:
        """The photo to show: itself, or with Grad-CAM beside it (the photo alone if that cannot be made)."""
        if gradcam:
            try:
                return gradcam_pair(predictor, path)
            except Exception:  # an explainer that fails costs the heat map, not the answer
                pass
        return open_image(path, min_side=1024)

    def _answer_settings_changed(self) -> None:
        """The threshold, the open-set check or Grad-CAM changed: the last question asked again."""
        if self.busy:
            return
        if self.last_folder is not None:
            self.classify_folder(self.last_folder)
        elif self.last_path is not None:
            self.classify_path(self.last_path)

    def exit(self) -> None:
        self.jobs.shutdown(wait=False, cancel_futures=True)
        self.root.destroy()

    # ---- worker plumbing ---------------------------------------------------------------------
    def _current_predictor(self) -> Predictor:
        # Jobs run one at a time, in order: a model load submitted before this job has finished by now.
        if self.predictor is None:
            raise ZoolensError("no model loaded")
        return self.predictor

    def _submit(self, kind: str, work) -> None:
        def run():
            try:
                self.results.put((kind, work(), None))
            except Exception as error:  # shown in the window; a worker must never die silently
                self.results.put((kind, None, error))

        self.jobs.submit(run)

    def _poll_results(self) -> None:
        try:
            while True:
                kind, value, error = self.results.get_nowait()
                self._show_result(kind, value, error)
        except queue.Empty:
            pass
        if self.root.winfo_exists():
            self.root.after(POLL_MS, self._poll_results)

    def _show_result(self, kind: str, value, error: Exception | None) -> None:
        if kind == "model":
            self._show_model_name()
            if error is not None:  # the previous model, if any, stays in use
                self._set_busy(False, "")
                self.answer_label.configure(text=f"Could not open the model: {error}", style="Problem.TLabel")
                return
            self.open_set_box.configure(state="disabled" if self.predictor.is_imagenet else "readonly")
            self._set_busy(False, f"Ready. Answers below {self.min_confidence:.0%} confidence say “not sure”.")
            return
        self._set_busy(False, "")
        if kind == "folder":
            self._show_folder(value, error)
            return
        if error is not None:
            self.last_prediction = None
            self.answer_label.configure(text=f"Cannot read this photo: {error}", style="Problem.TLabel")
            self._show_bars([], ERROR)
            self.scores_label.configure(text="")
            return
        # Whether ImageNet answered comes with the answer: a model load queued after it may have finished by now.
        image, prediction, imagenet = value
        self.last_prediction = prediction
        self.photo = image
        self._fit_photo()
        self.key_label.configure(text=GRADCAM_KEY if image.width > 1.8 * image.height and self.gradcam.get() else "")
        self.answer_label.configure(text=answer_line(prediction, imagenet),
                                    style=f"{VERDICT_STYLES[prediction.verdict]}.TLabel")
        self._show_bars(prediction.named_top, prediction.verdict)
        self.scores_label.configure(text=scores_note(prediction, imagenet) or "")
        shown = Path(prediction.source).name
        self._set_status(f"{shown} · {self.folder_summary}" if self.last_folder is not None else shown)

    def _show_folder(self, value, error: Exception | None) -> None:
        self.results_list.delete(*self.results_list.get_children())
        if error is not None:
            self.folder_results = []
            self.answer_label.configure(text=f"Cannot classify this folder: {error}", style="Problem.TLabel")
            return
        self.folder_results, imagenet = value
        for row, (path, prediction) in enumerate(self.folder_results):
            self.results_list.insert("", "end", iid=str(row), values=(path.name, answer_line(prediction, imagenet)))
        if not self.list_frame.winfo_ismapped():
            self.list_frame.pack(fill="both", before=self.status_label.master)
        counts = {}
        for _, prediction in self.folder_results:
            counts[prediction.answer] = counts.get(prediction.answer, 0) + 1
        summary = ", ".join(f"{answer} {n}" for answer, n in sorted(counts.items(), key=lambda item: -item[1]))
        self.folder_summary = f"{len(self.folder_results)} photos: {summary}"
        self._set_status(self.folder_summary)
        self.results_list.selection_set("0")  # shows the first photo

    # ---- display helpers ---------------------------------------------------------------------
    def _show_model_name(self) -> None:
        name = self.predictor.name if self.predictor else "no model"
        self.model_label.configure(text=f"Model: {name}")
        self.root.title(f"zoolens — {name}")

    def _show_bars(self, top: list[tuple[str, float]], verdict: str) -> None:
        for row in range(TOP_K):
            label, probability = top[row] if row < len(top) else ("", 0.0)
            self.bar_names[row].configure(text=label[:28])
            self.bars[row].configure(value=probability * 100.0,
                                     style=f"{VERDICT_STYLES[verdict]}.Horizontal.TProgressbar")
            self.bar_values[row].configure(text=f"{probability:.1%}" if label else "")

    def _fit_photo(self) -> None:
        if self.photo is None:
            return
        width, height = self.image_area.winfo_width(), self.image_area.winfo_height()
        if width < 10 or height < 10:
            return
        fitted = ImageOps.contain(self.photo, (width - 4, height - 4))
        self.shown = ImageTk.PhotoImage(fitted)
        self.image_area.configure(image=self.shown, text="")

    def _set_busy(self, busy: bool, status: str) -> None:
        self.busy = busy
        for button in (self.select_button, self.folder_button):
            button.configure(state="disabled" if busy else "normal")
        self._set_status(status)

    def _set_status(self, text: str) -> None:
        self.status_label.configure(text=text)

    # ---- for tests and scripts ---------------------------------------------------------------
    def answer_text(self) -> str:
        return str(self.answer_label.cget("text"))


def run_desktop(model: str | Path | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                backbone: str = "mobilenet_v2", open_set: str = DEFAULT_OPEN_SET) -> int:
    try:
        root = tk.Tk()
    except tk.TclError as error:
        raise ZoolensError(f"cannot open a window ({error}): the desktop app needs a graphical session") from None
    DesktopApp(root, model, min_confidence=min_confidence, backbone=backbone, open_set=open_set)
    root.mainloop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(run_desktop(sys.argv[1] if len(sys.argv) > 1 else None))
