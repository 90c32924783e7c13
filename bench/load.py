"""Load test of ``agedetect serve``: concurrent clients on loopback for a fixed time.

A real server process (``agedetect serve`` on 127.0.0.1, a free port) takes
``POST /api/v1/predict`` with one 640x480 JPEG holding one face from ``--clients``
clients (each a keep-alive connection sending requests back to back) for ``--seconds``.
Then an overload phase sends 4x as many clients for a quarter of the time: the server
runs at most ``--concurrency`` photos at once (one per core by default) and queues the
rest, so overload should lengthen the wait, not grow the memory.

Reports, per phase: requests, requests/s, p50/p95/p99/max latency, errors (any answer but
200 with one face, or a failed connection), and the server's resident memory (sampled,
and its peak, VmHWM).

    .venv/bin/python bench/load.py                   # 60 s + 15 s overload, ~80 s
    .venv/bin/python bench/load.py --seconds 20 --json

Targets on the project's 2-core machine (8 clients): 0 errors, p95 <= 500 ms.
Every loop ends by its deadline; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import httpx

from serve import photo_640x480, run_clients, start_server  # bench/serve.py: the same photo, launcher and clients
from servers import rss_mb  # tests/servers.py, on the path through bench/serve.py

TARGETS = {"errors": 0, "p95_ms": 500.0}


def run_phase(url: str, data: bytes, clients: int, seconds: float, pid: int) -> dict:
    """``clients`` threads posting ``data`` until ``seconds`` have passed."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    memory: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    stop = threading.Event()

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=60) as session:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    response = session.post("/api/v1/predict", files={"image": ("photo.jpg", data, "image/jpeg")})
                    problem = None if response.status_code == 200 and len(response.json()["faces"]) == 1 else (
                        f"status {response.status_code}")
                except httpx.HTTPError as error:
                    problem = type(error).__name__
                mine.append(time.perf_counter() - began)
                if problem:
                    with lock:
                        errors[problem] = errors.get(problem, 0) + 1
        with lock:
            latencies.extend(mine)

    def sample_memory() -> None:
        while not stop.wait(0.2):
            memory.append(rss_mb(pid))

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    wall = run_clients(client, clients)
    stop.set()
    sampler.join()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * cuts[49], 1),
        "p95_ms": round(1000 * cuts[94], 1),
        "p99_ms": round(1000 * cuts[98], 1),
        "max_ms": round(1000 * max(latencies), 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "rss_mb_max_sampled": round(max(memory, default=float("nan")), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the main phase (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the main phase (default 8)")
    parser.add_argument("--concurrency", type=int, help="the server's --concurrency (default: one per core)")
    parser.add_argument("--no-overload", action="store_true", help="skip the overload phase")
    parser.add_argument("--model", help="an exported .onnx (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds must be > 0 and --clients >= 1")

    data = photo_640x480()
    with start_server(args.model, args.concurrency, timeout=90) as server:
        url, pid = server.url, server.pid
        run_phase(url, data, 2, 2.0, pid)  # warm the connection path
        figures: dict = {"rss_mb_idle": round(rss_mb(pid), 1)}
        figures["load"] = run_phase(url, data, args.clients, args.seconds, pid)
        figures["peak_rss_mb_after_load"] = round(rss_mb(pid, "VmHWM"), 1)
        if not args.no_overload:
            figures["overload"] = run_phase(url, data, 4 * args.clients, max(5.0, args.seconds / 4), pid)
            figures["peak_rss_mb_after_overload"] = round(rss_mb(pid, "VmHWM"), 1)
        figures["server_alive"] = server.alive()

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"agedetect serve on 127.0.0.1, one 640x480 JPEG ({len(data) / 1e3:.0f} kB) with one face; "
          f"idle RSS {figures['rss_mb_idle']} MB")
    for phase in ("load", "overload"):
        if phase not in figures:
            continue
        f = figures[phase]
        print(f"  {phase}: {f['clients']} clients for {f['seconds']} s: {f['requests']} requests, "
              f"{f['requests_per_s']} req/s, p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, p99 {f['p99_ms']} ms, "
              f"max {f['max_ms']} ms, errors {f['errors']}{' ' + str(f['error_kinds']) if f['errors'] else ''}, "
              f"RSS up to {f['rss_mb_max_sampled']} MB; peak (VmHWM) {figures[f'peak_rss_mb_after_{phase}']} MB")
    load = figures["load"]
    for key, target in TARGETS.items():
        print(f"  target {key} <= {target:g} ({args.clients} clients): {'met' if load[key] <= target else 'MISSED'}"
              f" ({load[key]})")


if __name__ == "__main__":
    main()
