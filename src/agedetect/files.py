"""Find the image files a bulk command was pointed at, and fan work out over the cores.

Every bulk command (``predict``, ``evaluate``, ``audience``) takes the same arguments —
files, folders (searched recursively) and glob patterns — and goes through
:func:`find_images`, so they all see the same inputs in the same order. An argument that
names nothing is kept (as its own path) instead of dropped, so the command reports it as
a failed input and its counts still add up: seen = processed + failed.
"""

from __future__ import annotations

import glob
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

#: File name endings searched for inside folders (a file named directly is always taken).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
#: Videos, searched for by the commands that read them (``predict``, ``audience``: agedetect.video);
#: kept here so that finding files imports no video code.
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})

_GLOB_CHARACTERS = frozenset("*?[")

T = TypeVar("T")
R = TypeVar("R")


def find_images(inputs: Iterable[str | os.PathLike], *, videos: bool = False) -> list[Path]:
    """Expand files, folders and globs into a sorted, de-duplicated list of image paths.

    - a file is taken whatever its name (the loader says if it is not an image);
    - a folder contributes every image file under it (by extension, recursively, hidden
      files and folders skipped, symbolic links to folders not followed);
    - a pattern with ``*``, ``?`` or ``[`` is expanded (``**`` matches any depth) and each
      match is treated as above;
    - anything that matches nothing is kept as given, so the caller reports it as missing;
    - with ``videos``, folders contribute video files too.

    Order: inputs in the order given, each folder's files sorted by path.

    >>> find_images(["/no/such/photo.jpg"])
    [PosixPath('/no/such/photo.jpg')]
    """
    found: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = Path(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            found.append(path)

    for raw in inputs:
        text = os.fspath(raw)
        matches = sorted(glob.glob(text, recursive=True)) if _GLOB_CHARACTERS & set(text) else [text]
        if not matches:
            add(Path(text))
            continue
        for match in matches:
            path = Path(match)
            if path.is_dir():
                for image in _images_in(path, videos):
                    add(image)
            else:
                add(path)  # a file, or a missing path the caller will report
    return found


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether a file name ends like an image agedetect reads (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _images_in(folder: Path, videos: bool = False) -> list[Path]:
    endings = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if videos else IMAGE_EXTENSIONS
    images = []
    unreadable: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=lambda error: unreadable.append(Path(error.filename))):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        images.extend(Path(root) / name for name in files
                      if not name.startswith(".") and Path(name).suffix.lower() in endings)
    # A folder we may not list is reported (as a path that fails to load), not skipped.
    return sorted(images) + unreadable


def parallel_map(
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[R]:
    """``map(function, items)`` over ``workers`` processes, results in the order of ``items``.

    Each worker runs ``initializer(*initargs)`` once (load a model there, not per item).
    ``workers=1`` runs in this process with no pool, so a single image starts fast.
    ``function`` should catch its own per-item errors and return them, so one bad item
    never stops the batch.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")
    workers = min(workers, max(1, len(items)))
    if workers == 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    # "spawn" gives each worker a clean interpreter: no ONNX Runtime threads inherited
    # through fork, and the same behaviour on every platform.
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_start_worker,
        initargs=(initializer, initargs),
    )
    futures: list[Future] = []
    try:
        # Queueing the items starts the workers. A Ctrl+C meanwhile would leave the pool
        # half-built (an item queued but never handed out, which shutdown waits for forever)
        # and, in a worker still importing, print its traceback; so it is held back until
        # every item is queued, and the workers start with it blocked.
        with hold_back_ctrl_c():
            futures = [pool.submit(function, item) for item in items]
        for future in futures:
            yield future.result()
    finally:
        # On Ctrl+C or an early stop, drop what has not started: waiting for it would run
        # the whole batch after all.
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def hold_back_ctrl_c() -> Iterator[None]:
    """Hold back Ctrl+C (SIGINT) while a process pool starts workers or queues work.

    SIGINT is blocked in this thread (threads and processes started meanwhile inherit the
    block, so a worker cannot be interrupted while it starts) and, should another thread
    take it, noted; it is raised as KeyboardInterrupt on the way out, once. Queueing is
    never cut in half: an item half-queued is one a pool's shutdown waits for forever.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield  # only the main thread gets KeyboardInterrupt; no masks off POSIX
        return
    noted: list[int] = []
    previous_handler = signal.signal(signal.SIGINT, lambda number, frame: noted.append(number))
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # a pending SIGINT is noted here
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous_handler is None else previous_handler)
    if noted:
        raise KeyboardInterrupt


def ignore_ctrl_c() -> None:
    """A pool worker's initializer: Ctrl+C reaches the whole process group; the parent alone
    handles it (and stops the pool), instead of every worker printing its traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    ignore_ctrl_c()
    if initializer is not None:
        initializer(*initargs)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
