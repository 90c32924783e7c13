"""Live mode in a real headless Chromium whose camera is a clip made here.

Chromium's fake camera plays ``couple.y4m`` (a slow pan over ``people/couple.jpg``, two
adults, forwards then backwards so its loop has no jump) through
``--use-file-for-fake-video-capture``. The page's "Live age check" must show each person's
progress, then a PASS for both once they have enough frames, with their boxes drawn on the
feed. A screenshot goes to a temporary folder, or, with
``AGEDETECT_SCREENSHOT_LIVE=docs/img/live.png``, to the README's picture.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from agedetect.inference import AgeEstimator
from agedetect.web import create_app
from agedetect.web.live import MIN_FRAMES

from clips import Shot, pan_and_zoom, write_y4m
from servers import ThreadedServer
from shared_data import PEOPLE

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"),
    pytest.mark.skipif(not PEOPLE.is_dir(), reason=f"{PEOPLE} not present"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    estimator = AgeEstimator(threads=1)
    faces = estimator.predict(PEOPLE / "couple.jpg")
    left, right = sorted(face.box for face in faces)
    both = (left[0], min(left[1], right[1]), right[2], max(left[3], right[3]))
    with Image.open(PEOPLE / "couple.jpg") as photo:
        height = photo.height
    # A window that frames both faces and stays inside the photo (no black edges).
    side = min(max(both[2] - both[0], both[3] - both[1]) / 2.2, 0.94 * height / 2.8)
    centre = ((both[0] + both[2]) / 2, (both[1] + both[3]) / 2)
    box = (centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2)
    frames = list(pan_and_zoom(Shot(PEOPLE / "couple.jpg", box, 3.0), 10))
    return write_y4m(tmp_path_factory.mktemp("camera") / "couple.y4m", frames + frames[::-1], 10)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(create_app(AgeEstimator(threads=1))) as server:
        yield server.url


def wait_for(check, what: str, timeout: float = 60.0) -> None:
    """Poll ``check()`` (Playwright locators) until true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_live_mode_shows_progress_then_a_decision_per_person(base_url: str, camera_clip: Path, tmp_path: Path) -> None:
    with playwright_api.sync_playwright() as p:
        args = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_clip}"]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1,
                                          permissions=["camera"])
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base_url)
            page.click("[data-testid=live-open]")
            # Progress first: each person "checking…" with fewer than MIN_FRAMES frames.
            person = "[data-testid=live-person]"
            wait_for(lambda: page.locator(f"{person}[data-decision=pending]").count() >= 1, "progress")
            # Then a decision for both people.
            wait_for(lambda: page.locator(f"{person}[data-decision=pass]").count() == 2, "two PASS decisions")
            people = page.locator("[data-testid=live-person]").all_inner_texts()
            assert len(people) == 2 and all("PASS" in text for text in people), people
            assert "Each person needs" in page.inner_text("[data-testid=live-status]")
            rtts = page.evaluate("window.agedetectLive.rtts.length")
            assert rtts >= MIN_FRAMES
            asked = os.environ.get("AGEDETECT_SCREENSHOT_LIVE")
            screenshot = ROOT / asked if asked else tmp_path / "live.png"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 50_000
            page.click("#live-stop")
            assert page.locator("[data-testid=live]").is_hidden()
            assert errors == [], errors
        finally:
            browser.close()
