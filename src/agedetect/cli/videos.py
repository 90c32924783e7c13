"""What ``predict`` and ``audience`` share to read videos: the options, and progress by
time from the worker processes (a bar per video being read, on stderr)."""

from __future__ import annotations

import queue as queue_module
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import typer

from agedetect.video import DEFAULT_FPS, DEFAULT_MAX_SECONDS, VideoOptions, is_video

FPS_HELP = f"Videos: frames sampled per second (default {DEFAULT_FPS:g})."
MAX_SECONDS_HELP = f"Videos: longest accepted, in seconds (default {DEFAULT_MAX_SECONDS:g}); longer ones fail."


def video_options(fps: float, max_seconds: float, per_frame: bool = False) -> VideoOptions:
    try:
        return VideoOptions(fps=fps, max_seconds=max_seconds, per_frame=per_frame)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def count_videos(inputs: Sequence[str]) -> int:
    from agedetect.batch import local_path
    from agedetect.errors import AgeDetectError

    count = 0
    for name in inputs:
        try:
            count += is_video(local_path(name))
        except AgeDetectError:  # a refused URI: reported as a failed input later
            pass
    return count


# ---------------------------------------------------------------------- progress


@contextmanager
def video_progress(progress: Any, enabled: bool) -> Iterator[Any]:
    """A queue the workers report to (pass it to :func:`set_progress_queue` in each) and a
    thread that shows a bar per video on ``progress`` (a rich Progress); yields the queue,
    or ``None`` when ``enabled`` is false. Bars are removed by :func:`finish`."""
    if not enabled:
        yield None
        return
    from multiprocessing import get_context

    channel = get_context("spawn").Queue()
    bars: dict[str, Any] = {}
    finished: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def show() -> None:
        while not stop.is_set():
            try:
                file, done, total = channel.get(timeout=0.2)
            except queue_module.Empty:
                continue
            except (EOFError, OSError):
                return
            with lock:
                if file in finished:
                    continue
                if file not in bars:
                    bars[file] = progress.add_task(f"{Path(file).name} (s)", total=total)
                progress.update(bars[file], completed=done, total=total)

    thread = threading.Thread(target=show, daemon=True)
    thread.start()
    progress.video_bars = (bars, finished, lock)  # so finish() can drop a video's bar
    try:
        yield channel
    finally:
        stop.set()
        thread.join(timeout=2)
        channel.close()
        channel.join_thread()


def finish(progress: Any, files: Sequence[str]) -> None:
    """Drop the time bars of videos that are done."""
    if not hasattr(progress, "video_bars"):
        return
    bars, finished, lock = progress.video_bars
    with lock:
        for file in files:
            finished.add(file)
            if file in bars:
                progress.remove_task(bars.pop(file))
