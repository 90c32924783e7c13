"""``agedetect serve``: the web page and JSON API on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agedetect.cli import app
from agedetect.cli.common import console, user_errors


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", min=0.01, help="Largest upload accepted, in MB."),
    max_megapixels: float = typer.Option(40.0, "--max-megapixels", min=0.01, max=100.0, help="Largest image accepted."),
    concurrency: Optional[int] = typer.Option(
        None, min=1, help="Photos processed at once (default: one per core); more requests wait."
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log method, path and status."),
    max_live_sessions: int = typer.Option(4, "--max-live-sessions", min=1, help="Live camera sessions at once."),
) -> None:
    """Serve the page (/) and the API (/api/v1/predict, /healthz, docs at /docs)."""
    import uvicorn

    from agedetect.inference import AgeEstimator
    from agedetect.web import ServeSettings, create_app

    with user_errors():
        overrides = {"max_concurrency": concurrency} if concurrency else {}
        settings = ServeSettings(
            max_upload_bytes=int(max_upload_mb * 1e6), max_pixels=int(max_megapixels * 1e6),
            max_live_sessions=max_live_sessions, **overrides
        )
        # Load and verify the model here, so a missing or corrupt one is a one-line error
        # instead of a traceback from inside the server's startup.
        estimator = AgeEstimator(model, threads=1, max_pixels=settings.max_pixels).load()
        application = create_app(estimator, settings=settings)
        shown = f"[{host}]" if ":" in host else host
        console.print(
            f"agedetect: model [bold]{estimator.metadata.get('name', estimator.path.name)}[/], "
            f"page at [bold]http://{shown}:{port}[/] (Ctrl+C stops)",
            highlight=False,
        )
    # The access log holds method, path and status only: no bodies, no file names.
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        # No limit_concurrency: uvicorn would answer over it with its own text/plain 503;
        # the app refuses requests beyond ServeSettings.max_requests with its JSON 503 instead.
        # WebSocket messages (live camera frames) over this are refused by the protocol itself;
        # the app refuses frames over 1 MB with a message (agedetect.web.live).
        ws_max_size=2_000_000,
        server_header=False,
    )
