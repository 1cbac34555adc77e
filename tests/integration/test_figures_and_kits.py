"""What a warm `zoolens train` leans on to finish in seconds: figures drawn by a process of their own (and here when
that process is gone), the pretrained backbone's kit in the cache (and what happens when it is damaged), and the
temperature found without scipy.optimize."""

import os

import numpy as np
from PIL import Image

from zoolens.plotting import FigureDrawer


def test_figures_are_drawn_by_their_own_process_and_here_once_it_is_gone(tmp_path):
    drawer = FigureDrawer()
    try:
        assert drawer.draw("os:getpid").result() != os.getpid()
        drawn = drawer.draw("zoolens.evaluation.plots:plot_confusion_matrix", np.array([[5, 1], [0, 4]]),
                            ["cats", "dogs"], tmp_path / "matrix.png")
        assert drawn.result() == tmp_path / "matrix.png" and Image.open(drawn.result()).size[0] > 300
        drawer.draw("time:sleep", 2)  # keeps the process busy: the next one waits
        waiting = drawer.draw("os:getpid")
        for process in list(drawer._pool._processes.values()):
            process.kill()
            process.join()
        assert waiting.result() == os.getpid()  # lost with the process: drawn here instead
        assert drawer.draw("os:getpid").result() == os.getpid()
    finally:
        drawer.close()
    assert FigureDrawer(separate=False).draw("os:getpid").result() == os.getpid()


def test_the_drawing_process_ends_when_the_process_it_draws_for_is_killed():
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, time\nfrom zoolens.plotting import FigureDrawer\ndrawer = FigureDrawer()\n"
            "print(drawer.draw('os:getpid').result(), flush=True)\ntime.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    drawing = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{drawing}") and "Z" not in _state(drawing):
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{drawing}") or "Z" in _state(drawing), "the drawing process outlived its parent"


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
