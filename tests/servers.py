"""Real servers for the web tests and the serving benchmarks: the app on uvicorn in a thread
of the test process (:class:`ThreadedServer`), or ``agedetect serve`` as users run it, in its
own process (:class:`ServeProcess`, whose start-up time, memory and logs a test or benchmark
can read). Loopback only. ``bench/serve.py`` and ``bench/load.py`` import this file too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

AGEDETECT = str(Path(sys.executable).with_name("agedetect"))  # the installed command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory in MB from /proc: ``VmRSS`` now, ``VmHWM`` its peak so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ThreadedServer:
    """uvicorn serving ``app`` on a free loopback port from a background thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        # log_config=None: uvicorn's records reach the root logger, where caplog sees them.
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=True)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServeProcess:
    """``agedetect serve ARGS`` on a free loopback port, stdout and stderr captured.

    ``cwd`` and ``env`` (merged over this process's; ``None`` removes a variable) let a
    test choose where the server runs and which ``TMPDIR`` it sees. Waits up to
    ``timeout`` seconds for ``/healthz`` on enter (``started_in`` is how long it took from
    launch); terminates on exit.
    """

    def __init__(self, *args: str, cwd: str | os.PathLike | None = None,
                 env: dict[str, str | None] | None = None, timeout: float = 90.0) -> None:
        self.port = free_port()
        self.command = [AGEDETECT, "serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.cwd = cwd
        merged = {**os.environ, **(env or {})}
        self.env = {key: value for key, value in merged.items() if value is not None}
        self.process: subprocess.Popen | None = None
        self._output: list[bytes] = []
        self._reader: threading.Thread | None = None
        self.timeout = timeout
        self.started_in = float("nan")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def memory_mb(self) -> dict[str, float]:
        """``rss`` (resident now) and ``peak`` (VmHWM, the highest so far) in MB."""
        return {"rss": rss_mb(self.pid, "VmRSS"), "peak": rss_mb(self.pid, "VmHWM")}

    @property
    def raw_output(self) -> bytes:
        """Everything the server printed so far (stdout and stderr, interleaved)."""
        return b"".join(self._output)

    @property
    def output(self) -> str:
        return self.raw_output.decode(errors="replace")

    def __enter__(self) -> "ServeProcess":
        launched = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # Drain the pipe as the server writes (an unread pipe would block its access log).
        self._reader = threading.Thread(target=lambda: self._output.extend(iter(self.process.stdout.readline, b"")),
                                        daemon=True)
        self._reader.start()
        with httpx.Client(timeout=2) as client:
            while True:
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        self.started_in = time.perf_counter() - launched
                        return self
                except httpx.TransportError:
                    pass
                if not self.alive() or time.perf_counter() - launched > self.timeout:
                    self.__exit__()
                    raise RuntimeError(f"agedetect serve did not start within {self.timeout:g} s:\n{self.output}")
                time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
