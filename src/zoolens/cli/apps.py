"""`zoolens desktop`, `zoolens web` and `zoolens dogs`: registered into the main parser by zoolens.cli."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from zoolens.choices import DEFAULT_BACKBONE, DEFAULT_MIN_CONFIDENCE, DEFAULT_OPEN_SET, OPEN_SET_MODES
from zoolens.errors import ZoolensError, require_extra

WEB_SCRIPT = Path(__file__).resolve().parents[1] / "apps" / "web.py"  # the Streamlit script, run as a file
MAX_UPLOAD_MB = 20
OPEN_SET_HELP = ("'none of these' for people, objects, empty frames and other species: on (default), strict "
                 "(turns more photos away) or off; for trained models (ImageNet mode always says when no animal "
                 "is found)")


def cmd_desktop(args) -> int:
    from zoolens.apps.common import require_model_folder
    from zoolens.apps.desktop import run_desktop
    from zoolens.cli.common import refuse_unless

    refuse_unless(args, not args.model, ("backbone",),
                  "only for the ImageNet mode, without a MODEL (a model has its own network)")
    model = require_model_folder(args.model) if args.model else None
    return run_desktop(model, min_confidence=args.min_confidence, backbone=args.backbone, open_set=args.open_set)


def web_command(args) -> list[str]:
    """The `streamlit run` command line for the web app; app options follow `--`."""
    command = [sys.executable, "-m", "streamlit", "run", str(WEB_SCRIPT),
               "--server.port", str(args.port), "--server.address", args.address,
               "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer"]
    if args.headless:
        command += ["--server.headless", "true"]
    command += ["--", "--models-dir", args.models_dir, "--min-confidence", str(args.min_confidence),
                "--open-set", args.open_set]
    if args.model:
        from zoolens.apps.common import require_model_folder

        command += ["--model", str(require_model_folder(args.model))]
    if args.breeds:
        command += ["--breeds", args.breeds]
    from zoolens.cli.common import refuse_unless

    refuse_unless(args, bool(args.review), ("corrections",), "is where the review page writes: it needs --review DATA")
    if args.review:
        from zoolens.apps.review import check_corrections_file, default_corrections_file
        from zoolens.data.folders import scan_folder

        # Data that cannot be a dataset is refused before the server starts. A labels CSV is passed on as itself (the
        # app scans it as train does); its photos lie under its folder, where decisions must not be written.
        data = scan_folder(args.review).root
        corrections = check_corrections_file(data, args.corrections or default_corrections_file(data))
        command += ["--review", str(Path(args.review).resolve()), "--corrections", str(corrections.resolve())]
    return command


def cmd_web(args) -> int:
    require_extra("streamlit", "apps", "zoolens web")
    if _port_in_use(args.address, args.port):
        raise ZoolensError(f"port {args.port} is already in use: pass --port with another number")
    server = subprocess.Popen(web_command(args))
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reached streamlit too: let it shut down cleanly
        server.wait(timeout=15)
        return 0
    finally:
        if server.poll() is None:
            server.terminate()


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((address if address != "0.0.0.0" else "127.0.0.1", port)) == 0


def cmd_dogs(args) -> int:
    from zoolens.apps import dogs
    from zoolens.cli.common import refuse_unless

    refuse_unless(args, args.audit, ("n", "seed"), "only with --audit: zoolens dogs --audit --n 100 --seed 0")
    refuse_unless(args, not args.audit, ("breeds", "min_confidence", "open_set"),
                  "not with --audit, which measures the dog and face detectors only")
    if args.audit and args.images:
        raise ZoolensError("--audit measures the detectors on the shared datasets and takes no PHOTO: "
                           "zoolens dogs --audit, or zoolens dogs PHOTO...")
    if args.audit:
        print(dogs.format_audit(dogs.audit_detectors(n=args.n, seed=args.seed, backbone=args.backbone), args.backbone))
        return 0
    if not args.images:
        raise ZoolensError("usage: zoolens dogs IMAGE... [--breeds MODEL]  (or zoolens dogs --audit)")
    from zoolens.cli.common import expand_inputs

    inputs = expand_inputs(args.images)
    app = dogs.DogBreedApp(dogs.find_breeds_model(args.breeds), backbone=args.backbone,
                           min_confidence=args.min_confidence, open_set=args.open_set)
    print(dogs.format_reports(app.identify(inputs)))
    return 0


def register(subparsers) -> None:
    desktop = subparsers.add_parser("desktop", help="desktop app (Tkinter): pick a photo, see what it is")
    desktop.add_argument("model", nargs="?", metavar="MODEL",
                         help="a model folder (default: the 1000 ImageNet classes, no training)")
    desktop.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                         help="answer 'not sure' below this probability")
    desktop.add_argument("--open-set", default=DEFAULT_OPEN_SET.value, choices=OPEN_SET_MODES, help=OPEN_SET_HELP)
    desktop.add_argument("--backbone", default=DEFAULT_BACKBONE, help="network for the ImageNet mode (no MODEL)")
    desktop.set_defaults(run=cmd_desktop)

    web = subparsers.add_parser("web", help="web app (Streamlit, in zoolens[apps]): upload photos, see "
                                                 "predictions, download CSV")
    web.add_argument("model", nargs="?", metavar="MODEL",
                     help="a model folder to start with (default: the first in --models-dir)")
    web.add_argument("--port", type=int, default=8501, help="port to serve on")
    web.add_argument("--address", default="127.0.0.1", help="interface to serve on (default: this machine only)")
    web.add_argument("--models-dir", metavar="FOLDER", default="runs",
                     help="folder whose model folders the model picker lists")
    web.add_argument("--breeds", metavar="MODEL", help="dog-breed model for the dog page (default runs/dog-breeds)")
    web.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                     help="answer 'not sure' below this probability; the page's slider starts here")
    web.add_argument("--open-set", default=DEFAULT_OPEN_SET.value, choices=OPEN_SET_MODES,
                     help=OPEN_SET_HELP + "; the page's control starts here")
    web.add_argument("--review", metavar="DATA", help="add a page to review DATA's flagged photos (likely "
                     "mislabelled, copies across the split, outliers) and retrain on the corrections")
    web.add_argument("--corrections", metavar="FILE.csv", help="where the review page writes its decisions (default "
                     "./<DATA's name>-corrections.csv; never inside DATA)")
    web.add_argument("--headless", action="store_true", help="do not open a browser")
    web.set_defaults(run=cmd_web)

    dogs = subparsers.add_parser("dogs", help="dog breed of a dog, or the breed a human face resembles "
                                              "(the app of seed 004's report)")
    dogs.add_argument("images", nargs="*", metavar="PHOTO", help="photos or folders of photos")
    dogs.add_argument("--breeds", metavar="MODEL", help="breed model (default runs/dog-breeds; train: "
                                                        "zoolens train <imagewoof> --out runs/dog-breeds)")
    dogs.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                      help="answer 'not sure' below this probability")
    dogs.add_argument("--open-set", default=DEFAULT_OPEN_SET.value, choices=OPEN_SET_MODES,
                      help="whether a dog may be 'none of the breeds this model knows': on (default), strict or off")
    dogs.add_argument("--backbone", default=DEFAULT_BACKBONE, help="ImageNet network of the dog detector")
    dogs.add_argument("--audit", action="store_true",
                      help="measure both detectors on the shared faces, imagewoof and animals3 photos")
    dogs.add_argument("--n", type=int, default=100, help="photos per set for --audit")
    dogs.add_argument("--seed", type=int, default=0, help="which photos --audit samples")
    dogs.set_defaults(run=cmd_dogs)
