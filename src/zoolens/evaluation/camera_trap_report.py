"""A camera-trap season on one page, and `export_results`: everything `zoolens results RESULTS.parquet ...` writes.

The page (`write_results_report`) is self-contained like the model report (zoolens.evaluation.report): inline CSS,
figures as embedded PNG, no scripts or links, Jinja2 autoescaped (camera folders and class names are people's text).
It shows the counts (frames, events, each kind per frame and per event, frames without a time), the first events, and
the two pictures ecologists look at: detections of each class by hour of day (activity) and each camera's days
(a timeline). Detections are events, not frames: a burst of ten frames of one fox is one fox passing.

`export_results` lives here, above zoolens.inference.camera_traps (which reads the results and writes the formats),
because the report draws figures.
"""

from __future__ import annotations

import datetime as _dt
import logging
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from zoolens import __version__
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S, parse_timezone
from zoolens.errors import ZoolensError
from zoolens.evaluation.report_template import PAGE_STYLE
from zoolens.files import replaced_atomically
from zoolens.inference.camera_trap_formats import KINDS, CamtrapDpWritten, EventAnswer
from zoolens.inference.camera_traps import (
    CameraTrapResults,
    check_outputs,
    read_camera_trap_results,
    read_deployments,
    read_project,
    write_formats,
)
from zoolens.plotting import plain_text

log = logging.getLogger(__name__)

EVENT_ROWS = 200  # events listed on the page (all of them are in the events CSV)
ACTIVITY_CLASSES = 8  # classes drawn in the activity figure, the most seen first
TIMELINE_CAMERAS = 40  # cameras drawn in the timeline, by name
KIND_COLOURS = {"animal": "#2e7d32", "person": "#e65100", "vehicle": "#1565c0", "blank": "#9e9e9e",
                "unknown": "#6d4c41", "unreadable": "#c62828"}
PAGE_KINDS = ("blank", "animal", "person", "vehicle", "unknown", "unreadable")


# ---- what is counted ----------------------------------------------------------------------------------
def detection_class(event: EventAnswer) -> str | None:
    """What an event counts as in the activity figure: its species, "animal (no class)" for an animal none of the
    model's classes fits, "person", "vehicle"; None for blank, unknown and unreadable events."""
    if event.kind == "animal":
        return event.species or "animal (no class)"
    return event.kind if event.kind in ("person", "vehicle") else None


def activity_counts(events: list[EventAnswer], names: dict[str, str] | None = None) -> dict[str, list[int]]:
    """Detections (events with a time) of each class by hour of day (0-23) of their first frame, the classes most
    seen first; beyond ACTIVITY_CLASSES they are summed as "other"."""
    names = names or {}
    by_class: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for event in events:
        shown = detection_class(event)
        if shown is not None and event.start is not None:
            by_class[names.get(shown, shown)][event.start.hour] += 1
    ranked = sorted(by_class, key=lambda name: (-sum(by_class[name]), name))
    kept = {name: by_class[name] for name in ranked[:ACTIVITY_CLASSES]}
    rest = ranked[ACTIVITY_CLASSES:]
    if rest:
        kept["other"] = [sum(by_class[name][hour] for name in rest) for hour in range(24)]
    return kept


def timeline_days(events: list[EventAnswer]) -> dict[str, dict[_dt.date, Counter]]:
    """camera -> day -> how many events of each kind began that day (events with a time)."""
    days: dict[str, dict[_dt.date, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for event in events:
        if event.start is not None:
            days[event.camera][event.start.date()][event.kind] += 1
    return days


# ---- figures -------------------------------------------------------------------------------------------
@plain_text
def plot_activity(counts: dict[str, list[int]], path: Path) -> Path:
    """One row per class: its detections by hour of day (the camera's clock), as bars."""
    from zoolens.plotting import plt, save_figure

    rows = max(1, len(counts))
    figure, axes = plt.subplots(rows, 1, figsize=(9, 0.5 + 1.25 * rows), sharex=True, squeeze=False)
    hours = list(range(24))
    for axis, (name, values) in zip(axes[:, 0], counts.items()):
        colour = KIND_COLOURS.get(name, KIND_COLOURS["animal"])
        axis.bar(hours, values, width=0.85, color=colour)
        axis.set_ylabel(f"{name}\n({sum(values)})", rotation=0, ha="right", va="center", fontsize=9)
        axis.set_ylim(0, max(1, max(values)) * 1.15)
        axis.yaxis.set_major_locator(plt.MaxNLocator(integer=True, nbins=3))
        axis.grid(axis="y", alpha=0.3)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    if not counts:
        axes[0, 0].text(11.5, 0.5, "no animal, person or vehicle with a capture time", ha="center", va="center",
                        color="grey")
        axes[0, 0].set_yticks([])
    last = axes[-1, 0]
    last.set_xticks(range(0, 24, 2))
    last.set_xticklabels([f"{hour:02d}:00" for hour in range(0, 24, 2)], fontsize=8)
    last.set_xlim(-0.6, 23.6)
    last.set_xlabel("hour of day (the camera's clock); detections are events")
    figure.suptitle("Activity: detections of each class by hour of day", x=0.02, ha="left", fontsize=12)
    figure.tight_layout()
    return save_figure(figure, path)


@plain_text
def plot_timeline(days: dict[str, dict[_dt.date, Counter]], path: Path) -> Path:
    """One row per camera: a grey line from its first to its last day with an event, a grey tick for a day of
    blank events only, and a dot for each day with an animal, person or vehicle (the most seen of them that day;
    bigger for more events)."""
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D

    from zoolens.plotting import plt, save_figure

    cameras = sorted(days)[:TIMELINE_CAMERAS]
    figure, axis = plt.subplots(figsize=(9, 1.4 + 0.42 * max(1, len(cameras))))
    for row, camera in enumerate(cameras):
        by_day = days[camera]
        first, last = min(by_day), max(by_day)
        axis.plot([first, last], [row, row], color="#cfd8dc", lw=6, solid_capstyle="round", zorder=1)
        for day, kinds in sorted(by_day.items()):
            seen = [(kinds[kind], kind) for kind in ("animal", "person", "vehicle") if kinds[kind]]
            if seen:
                count, kind = max(seen)
                axis.scatter([day], [row], s=18 + 10 * min(sum(n for n, _ in seen), 20), color=KIND_COLOURS[kind],
                             zorder=3, edgecolors="white", linewidths=0.5)
            else:
                axis.scatter([day], [row], marker="|", s=80, color=KIND_COLOURS["blank"], zorder=2)
    axis.set_yticks(range(len(cameras)))
    axis.set_yticklabels([camera or "(top folder)" for camera in cameras], fontsize=9)
    axis.set_ylim(len(cameras) - 0.5, -0.5)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axis.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)
    if not cameras:
        axis.text(0.5, 0.5, "no frame with a capture time", transform=axis.transAxes, ha="center", color="grey")
    handles = [Line2D([], [], marker="o", ls="", color=KIND_COLOURS[kind], label=kind)
               for kind in ("animal", "person", "vehicle")]
    handles.append(Line2D([], [], marker="|", ls="", color=KIND_COLOURS["blank"], markersize=10, label="blank only"))
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(cameras) > 3 else -0.3),
                ncol=4, frameon=False, fontsize=9)
    more = f" (the first {len(cameras)} of {len(days)} cameras)" if len(days) > len(cameras) else ""
    axis.set_title(f"Timeline: each camera's days with events{more}", loc="left", fontsize=12)
    return save_figure(figure, path)


# ---- the page --------------------------------------------------------------------------------------------
def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _confidence(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _stamp(value: _dt.datetime | None) -> str:
    return value.isoformat(sep=" ") if value is not None else "no time"


def report_context(found: CameraTrapResults, figures: dict[str, str], event_rows: int = EVENT_ROWS) -> dict:
    frames, events = len(found.frames), len(found.events)
    kinds = [kind for kind in PAGE_KINDS if found.frame_kinds[kind] or found.event_kinds[kind]
             or kind in ("blank", "animal", "person", "vehicle")]
    counts = [{"kind": kind, "frames": found.frame_kinds[kind], "frames_share": _percent(found.frame_kinds[kind],
                                                                                         frames),
               "events": found.event_kinds[kind], "events_share": _percent(found.event_kinds[kind], events)}
              for kind in kinds]
    ordered = sorted(found.events, key=lambda e: (e.camera, e.start is None, e.start or _dt.datetime.min, e.frames))
    names = found.names
    rows = [{"id": event.event_id, "camera": event.camera or "(top folder)", "start": _stamp(event.start),
             "end": _stamp(event.end) if event.end != event.start else "", "frames": len(event.frames),
             "kind": event.kind, "confidence": _confidence(event.kind_confidence),
             "species": names.get(event.species, event.species), "species_confidence":
                 _confidence(event.species_confidence), "first": event.frames[0]} for event in ordered[:event_rows]]
    times = [frame.time for frame in found.frames if frame.time is not None]
    cameras = {frame.camera for frame in found.frames}
    return {
        "title": found.results.name,
        "root": str(found.root),
        "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "cards": [("frames", f"{frames:,}"), ("events", f"{events:,}"), ("cameras", f"{len(cameras):,}"),
                  ("frames without a time", f"{found.without_time:,}")],
        "span": f"{min(times):%Y-%m-%d} to {max(times):%Y-%m-%d}" if times else "no frame has a capture time",
        "gap": f"{found.gap_s:g}",
        "counts": counts,
        "events": rows,
        "events_shown": len(rows),
        "events_total": events,
        "without_time": found.without_time,
        "set_aside": found.set_aside,
        "model": found.classified_by,
        "classes": [names.get(name, name) for name in found.classes],
        "colours": KIND_COLOURS,
        **figures,
    }


def render(context: dict) -> str:
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(PAGE).render(**context)


def write_results_report(found: CameraTrapResults, path: str | Path, event_rows: int = EVENT_ROWS) -> Path:
    """The season's page (see the module) at `path`, written atomically."""
    from zoolens.evaluation.report import figure_uri

    with tempfile.TemporaryDirectory() as scratch:
        figures = {
            "activity": figure_uri(plot_activity(activity_counts(found.events, found.names),
                                                 Path(scratch) / "activity.png")),
            "timeline": figure_uri(plot_timeline(timeline_days(found.events), Path(scratch) / "timeline.png")),
        }
    path = Path(path)
    with replaced_atomically(path) as temporary:
        temporary.write_text(render(report_context(found, figures, event_rows)), encoding="utf-8",
                             errors="backslashreplace")
    return path


# ---- everything `zoolens results` writes ---------------------------------------------------------------------
@dataclass
class ResultsExport:
    """What export_results read and wrote (None: not asked for)."""

    found: CameraTrapResults
    megadetector: Path | None = None
    camtrap_dp: CamtrapDpWritten | None = None
    events: Path | None = None
    report: Path | None = None

    def lines(self) -> list[str]:
        """What happened, for people: one line each."""
        found = self.found
        kinds = ", ".join(f"{found.frame_kinds[kind]} {kind}" for kind in (*KINDS,) if found.frame_kinds[kind])
        event_kinds = ", ".join(f"{found.event_kinds[kind]} {kind}" for kind in PAGE_KINDS if found.event_kinds[kind])
        said = [f"{found.results}: {len(found.frames)} frames ({kinds}) in {len(found.events)} events "
                f"({event_kinds}; a new event after {found.gap_s:g} s without a frame of the camera)"]
        if found.without_time:
            left = " and left out of the Camtrap DP package" if self.camtrap_dp is not None else ""
            said.append(f"{found.without_time} frames had no usable capture time: each is an event of its "
                        f"own{left}")
        if self.megadetector:
            said.append(f"wrote {self.megadetector} (MegaDetector batch results 1.6; paths relative to {found.root})")
        if self.camtrap_dp is not None:
            written = self.camtrap_dp
            said.append(f"wrote {written.folder}/ (Camtrap DP 1.0.2: {written.deployments} deployments, {written.media}"
                        f" media, {written.observations} observations; times at "
                        f"{'UTC, assumed' if written.timezone_assumed else written.timezone})")
        if self.events:
            said.append(f"wrote {self.events} (one row per event)")
        if self.report:
            said.append(f"wrote {self.report} (counts, events, activity by hour, each camera's days)")
        return said


def export_results(results: str | Path, *, megadetector: str | Path | None = None,
                   camtrap_dp: str | Path | None = None, deployments: str | Path | None = None,
                   project: str | Path | None = None, timezone: str | None = None,
                   sequence_gap: float = DEFAULT_SEQUENCE_GAP_S, events: str | Path | None = None,
                   report: str | Path | None = None) -> ResultsExport:
    """The camera-trap outputs of a batch job's results folder (`zoolens predict MODEL DIR --out RESULTS.parquet`):

    - megadetector: MegaDetector batch results 1.6 (Timelapse, AddaxAI), paths relative to the folder predicted;
    - camtrap_dp: a Camtrap DP 1.0.2 package folder, with `deployments` (a CSV of Camtrap DP's deployment columns,
      deploymentID the camera folder's name) and `project` (a JSON file of the package-level facts: `project`,
      `contributors`, ...); `timezone` the cameras' offset such as "+02:00" (default: UTC, said);
    - events: one CSV row per event; report: one HTML page (counts, events, activity, timeline).
    Events are frames of one camera at most `sequence_gap` seconds apart. Every output is refused before any work
    where it would land among the photos or in the results folder. At least one output must be asked for."""
    outputs = {"megadetector": megadetector, "camtrap_dp": camtrap_dp, "events": events, "report": report}
    if not any(value is not None for value in outputs.values()):
        raise ZoolensError("nothing to write: ask for at least one of --megadetector FILE.json, --camtrap-dp FOLDER, "
                           "--events FILE.csv, --report FILE.html")
    if camtrap_dp is None:
        for name, value in (("deployments", deployments), ("project", project), ("timezone", timezone)):
            if value is not None:
                raise ZoolensError(f"--{name}: only with --camtrap-dp FOLDER (it fills the Camtrap DP package)")
    zone = parse_timezone(timezone)
    from zoolens.inference.batch import ResultsDataset

    root = ResultsDataset.read(results).root  # its settings checked, before the outputs are
    check_outputs(results, root, outputs, {"deployments": deployments, "project": project})
    deployment_rows = read_deployments(deployments) if deployments is not None else None
    facts = read_project(project) if project is not None else None
    found = read_camera_trap_results(results, sequence_gap)
    written = write_formats(found, megadetector=megadetector, camtrap_dp=camtrap_dp, events=events,
                            deployments=deployment_rows, deployments_file=deployments, project=facts,
                            project_file=project, timezone=zone)
    done = ResultsExport(found, written.megadetector, written.camtrap_dp, written.events)
    if report is not None:
        done.report = write_results_report(found, report)
    return done


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zoolens camera-trap results: {{ title }}</title>
<style>
""" + PAGE_STYLE + """  header p { word-break: break-all; }
  table { border-collapse: collapse; font-size: 14px; }
  th, td { padding: 4px 12px 4px 0; text-align: left; vertical-align: top; border-bottom: 1px solid #eef1f4; }
  th { color: #4a5866; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; padding-left: 12px; }
  td.file { color: #6a7886; font-size: 12px; word-break: break-all; }
  td.id { color: #6a7886; font-size: 12px; font-family: monospace; white-space: nowrap; }
  td.when, td.what { white-space: nowrap; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
  .card { background: #f0f4f8; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
  .card .value { font-size: 24px; font-weight: 700; color: #1f3b57; }
  .card .label { font-size: 12px; color: #5b6b7a; text-transform: uppercase; letter-spacing: .04em; }
  img.figure { max-width: 100%; height: auto; }
  .note { color: #5b6b7a; font-size: 13px; max-width: 900px; }
  .kind { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
  {% for kind, colour in colours.items() %}.k-{{ kind }} { background: {{ colour }}; }
  {% endfor %}
</style>
</head>
<body>
<header>
  <h1>Camera-trap results: {{ title }}</h1>
  <p>{{ root }} &middot; {{ model }} &middot; page written {{ written }}</p>
</header>
<main>
<section id="counts">
  <h2>In short</h2>
  <div class="cards">
    {% for label, value in cards %}
    <div class="card"><div class="value">{{ value }}</div><div class="label">{{ label }}</div></div>
    {% endfor %}
  </div>
  <p class="note">Frames taken {{ span }} (the cameras' clocks). An event is the frames of one camera taken at most
    {{ gap }} s after the one before; a frame without a capture time is an event of its own.
    {% if without_time %}{{ without_time }} frame(s) had no usable capture time (none in the EXIF, or one that cannot
    be right): they are in no figure and cannot be Camtrap DP media.{% endif %}
    {% if set_aside %}{{ set_aside }} row(s) of the results were set aside: not this job's answers.{% endif %}</p>
  <table>
    <tr><th>kind</th><th class="num">frames</th><th class="num">share</th><th class="num">events</th>
      <th class="num">share</th></tr>
    {% for row in counts %}
    <tr><td><span class="kind k-{{ row.kind }}"></span>{{ row.kind }}</td><td class="num">{{ row.frames }}</td>
      <td class="num">{{ row.frames_share }}</td><td class="num">{{ row.events }}</td>
      <td class="num">{{ row.events_share }}</td></tr>
    {% endfor %}
  </table>
  <p class="note">The model's classes: {{ classes|join(", ") }}. An event is an animal when one of its frames
    confidently is, a person or vehicle when one of its frames is (and no animal is sure), blank only when all its
    frames are.</p>
</section>
<section id="activity">
  <h2>Activity</h2>
  <img class="figure" alt="detections of each class by hour of day" src="{{ activity }}">
</section>
<section id="timeline">
  <h2>Cameras by day</h2>
  <img class="figure" alt="each camera's days with events" src="{{ timeline }}">
</section>
<section id="events">
  <h2>Events</h2>
  <p class="note">{% if events_shown < events_total %}The first {{ events_shown }} of {{ events_total }} events, by
    camera and time; every event is in the events CSV (zoolens results ... --events FILE.csv).{% else %}All
    {{ events_total }} events, by camera and time.{% endif %}</p>
  <table>
    <tr><th>camera</th><th>start</th><th>end</th><th class="num">frames</th><th>kind</th><th class="num">sure</th>
      <th>species</th><th class="num">sure</th><th>first frame</th><th>event</th></tr>
    {% for row in events %}
    <tr><td>{{ row.camera }}</td><td class="when">{{ row.start }}</td><td class="when">{{ row.end }}</td>
      <td class="num">{{ row.frames }}</td>
      <td class="what"><span class="kind k-{{ row.kind }}"></span>{{ row.kind }}</td>
      <td class="num">{{ row.confidence }}</td><td>{{ row.species }}</td>
      <td class="num">{{ row.species_confidence }}</td>
      <td class="file">{{ row.first }}</td><td class="id">{{ row.id }}</td></tr>
    {% endfor %}
  </table>
</section>
<p class="note">zoolens {{ version }}.</p>
</main>
</body>
</html>
"""
