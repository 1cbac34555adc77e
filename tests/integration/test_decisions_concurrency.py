"""A person's decisions are never lost (issue 32, findings 1 and 2): any number of writers of one corrections file at
once (processes, threads of one process as the web app serves two browser sessions, and `zoolens data issues`
making its to_review.csv anew) keep every decision; a file replaced by two threads at once is never torn."""

from __future__ import annotations

import csv
import multiprocessing
import threading


from zoolens.data.corrections import read_corrections, record_decision, refresh_review
from zoolens.evaluation.data_issues import REVIEW_COLUMNS
from zoolens.files import replaced_atomically, temporary_name

PROCESSES, THREADS, DECISIONS = 2, 2, 30  # per thread: with this process's threads, 180 decisions in all


def _decide_in_threads(file: str, prefix: str, threads: int, decisions: int) -> None:
    """`threads` threads of this process, each recording `decisions` decisions of its own photos."""
    failures = []

    def decide(thread: int) -> None:
        try:
            for i in range(decisions):
                photo = f"{prefix}/t{thread}_{i:03d}.jpg"
                action = ("relabel", "exclude", "keep")[i % 3]
                record_decision(file, photo, action, "dogs" if action == "relabel" else "")
        except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
            failures.append(repr(error))

    workers = [threading.Thread(target=decide, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise AssertionError(failures[:3])


def _flags(count: int) -> list[dict]:
    return [{"path": f"flagged/f{i:03d}.jpg", "action": "", "label": "cats", "given": "dogs", "suggested": "cats",
             "score": 0.9, "reason": "likely mislabelled"} for i in range(count)]


def _expected(prefixes: list[str], threads: int, decisions: int) -> dict[str, tuple[str, str]]:
    expected = {}
    for prefix in prefixes:
        for t in range(threads):
            for i in range(decisions):
                action = ("relabel", "exclude", "keep")[i % 3]
                expected[f"{prefix}/t{t}_{i:03d}.jpg"] = (action, "dogs" if action == "relabel" else "")
    return expected


def _decisions(file) -> dict[str, tuple[str, str]]:
    corrections = read_corrections(file)
    return {path: corrections.decision(path) for path in corrections.decided()}


def test_processes_threads_and_a_data_issues_run_at_once_keep_every_decision(tmp_path):
    """2 processes and this one, 2 threads each, record 30 decisions per thread into one file, while another thread
    of this process keeps making the file anew as `zoolens data issues` does (refresh_review with 30 undecided flags,
    2 of them decided by a person before): all 180 decisions and the person's 2 are in the file at the end, and
    every flag once."""
    file = tmp_path / "to_review.csv"
    refresh_review(file, _flags(30), REVIEW_COLUMNS)
    record_decision(file, "flagged/f003.jpg", "keep")
    record_decision(file, "flagged/f007.jpg", "relabel", "cats")
    context = multiprocessing.get_context("fork")  # before any thread of this process starts
    processes = [context.Process(target=_decide_in_threads, args=(str(file), f"p{p}", THREADS, DECISIONS))
                 for p in range(PROCESSES)]
    for process in processes:
        process.start()
    stop, refreshed, failures = threading.Event(), [0], []

    def regenerate() -> None:
        try:
            while not stop.is_set() or refreshed[0] == 0:
                refresh_review(file, _flags(30), REVIEW_COLUMNS)
                refreshed[0] += 1
        except Exception as error:  # noqa: BLE001
            failures.append(repr(error))

    regenerator = threading.Thread(target=regenerate)
    regenerator.start()
    try:
        _decide_in_threads(str(file), "main", THREADS, DECISIONS)
        for process in processes:
            process.join(120)
    finally:
        stop.set()
        regenerator.join()
    assert [process.exitcode for process in processes] == [0] * PROCESSES and not failures, failures
    assert refreshed[0] > 1  # it did run alongside
    expected = _expected([f"p{p}" for p in range(PROCESSES)] + ["main"], THREADS, DECISIONS)
    expected |= {"flagged/f003.jpg": ("keep", ""), "flagged/f007.jpg": ("relabel", "cats")}
    assert _decisions(file) == expected
    paths = [row["path"] for row in csv.DictReader(file.open())]
    assert {f"flagged/f{i:03d}.jpg" for i in range(30)} <= set(paths) and len(paths) == len(set(paths)) == 210
    assert not [p.name for p in tmp_path.iterdir() if p.name != "to_review.csv"]  # no lock or temporary left


def test_threads_of_one_process_keep_every_decision(tmp_path):
    """How Streamlit serves two browser sessions: 4 threads, 25 decisions each, no error and all 100 kept."""
    file = tmp_path / "fix.csv"
    _decide_in_threads(str(file), "web", 4, 25)
    assert _decisions(file) == _expected(["web"], 4, 25)


def test_two_threads_replacing_one_file_never_publish_a_torn_one(tmp_path):
    """Each thread has a temporary name of its own; with one per process, threads wrote into each other's file and a
    torn, empty or vanished temporary was published (FileNotFoundError)."""
    path = tmp_path / "shared.txt"
    names = set()
    contents = {t: (f"thread {t} ".encode() * 20000) for t in range(6)}  # 180 kB each
    failures, seen = [], set()

    def write(thread: int) -> None:
        try:
            names.add(temporary_name(path))
            for _ in range(20):
                with replaced_atomically(path) as temporary:
                    temporary.write_bytes(contents[thread])
                seen.add(path.read_bytes())
        except Exception as error:  # noqa: BLE001
            failures.append(repr(error))

    workers = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures, failures[:3]
    assert len(names) == 6
    assert seen <= set(contents.values())  # every file ever read whole, one thread's bytes
