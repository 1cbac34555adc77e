"""`zoolens results`: a thin command over zoolens.evaluation.camera_trap_report.export_results (the camera-trap
outputs of a batch job's results)."""

from __future__ import annotations

from zoolens.errors import ZoolensError


def cmd_results(args) -> int:
    from zoolens.evaluation.camera_trap_report import export_results

    if args.sequence_gap is not None and not args.sequence_gap >= 0:
        raise ZoolensError(f"--sequence-gap {args.sequence_gap}: give a number of seconds, 0 or more")
    done = export_results(args.results, megadetector=args.megadetector, camtrap_dp=args.camtrap_dp,
                          deployments=args.deployments, project=args.project, timezone=args.timezone,
                          sequence_gap=args.sequence_gap, events=args.events, report=args.report)
    print("\n".join(done.lines()))
    return 0


def register(commands) -> None:
    from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S

    results = commands.add_parser(
        "results", help="camera-trap outputs of `zoolens predict ... --out` results: MegaDetector JSON, Camtrap DP, "
                        "events, a report")
    results.add_argument("results", metavar="RESULTS.parquet",
                         help="the results folder of zoolens predict MODEL FOLDER --out RESULTS.parquet")
    results.add_argument("--megadetector", metavar="FILE.json",
                         help="MegaDetector batch results 1.6 (Timelapse, AddaxAI); paths relative to the folder "
                              "predicted")
    results.add_argument("--camtrap-dp", metavar="FOLDER",
                         help="a Camtrap DP 1.0.2 package (camtraptor, camtrapR, GBIF); needs --deployments and "
                              "--project")
    results.add_argument("--deployments", metavar="FILE.csv",
                         help="with --camtrap-dp: Camtrap DP's deployment columns, one row per camera (deploymentID "
                              "the camera folder's name, latitude, longitude, ...)")
    results.add_argument("--project", metavar="FILE.json",
                         help='with --camtrap-dp: what only you know of the project: {"project": {"title", '
                              '"samplingDesign", "captureMethod"}, "contributors": [...], ...}')
    results.add_argument("--timezone", metavar="+HH:MM",
                         help="with --camtrap-dp: the cameras' clocks' offset from UTC (default: UTC, said)")
    results.add_argument("--sequence-gap", type=float, default=DEFAULT_SEQUENCE_GAP_S, metavar="SECONDS",
                         help="frames of one camera at most this far apart are one event")
    results.add_argument("--events", metavar="FILE.csv", help="one row per event: camera, start, end, kind, species")
    results.add_argument("--report", metavar="FILE.html",
                         help="one page: counts, events, activity by hour of day, each camera's days")
    # Each output is written whole or not at all (atomically): a failed run leaves none behind.
    results.set_defaults(run=cmd_results)
