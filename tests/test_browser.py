"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Uploads a photo with two faces and checks that both estimated ages appear; an image
with no face and a text file get their messages. (tests/test_page.py walks through the
rest of the page at a desktop and a phone size.) Screenshots the page with the couple
photo into a temporary folder; ``AGEDETECT_SCREENSHOT=docs/img/web.png`` writes it there
instead, to refresh the README's picture (so a plain ``make test`` leaves the tree clean).
Live mode runs with a fake camera playing a clip made here (its section below).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from clips import couple_shot, pan_and_zoom, write_y4m
from shared_data import BROWSER_TEST, CHROMIUM, NO_FACES, PEOPLE
ROOT = Path(__file__).resolve().parents[1]

pytestmark = BROWSER_TEST
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
expect = playwright_api.expect


def open_page(p, base_url: str, *chromium_args: str):
    """Chromium with a fake camera, permission granted, on the page: ``(browser, page)``;
    ``page.errors`` collects the page's errors. The camera is Chromium's test pattern, or
    a clip given with ``--use-file-for-fake-video-capture``."""
    args = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", *chromium_args]
    browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1,
                                  permissions=["camera"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base_url)
    page.errors = errors  # type: ignore[attr-defined]
    return browser, page


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module (the sync API allows one at a time)."""
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def page(base_url: str, playwright):
    browser, page = open_page(playwright, base_url)
    yield page
    browser.close()


def js_round(x: float) -> int:
    """Math.round: halves go up (Python's round() goes to even)."""
    return math.floor(x + 0.5)


def wait_until(page, selector: str, function: str, timeout: float = 20.0) -> None:
    """Poll ``function(element)`` until true. (page.wait_for_function evaluates a string,
    which the page's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.locator(selector).evaluate(function):
        assert time.monotonic() < deadline, f"timed out waiting for {function} on {selector}"
        time.sleep(0.05)


def upload(page, path: Path):
    with page.expect_response("**/api/v1/check") as answer:
        page.set_input_files("[data-testid=file]", str(path))
    return answer.value


def test_two_faces_show_both_ages(page, tmp_path: Path) -> None:
    response = upload(page, PEOPLE / "couple.jpg")
    assert response.status == 200
    faces = response.json()["faces"]
    assert len(faces) == 2
    page.wait_for_selector("[data-testid=face] >> nth=1")
    shown = page.locator("[data-testid=age]").all_inner_texts()
    assert shown == [str(js_round(face["age"])) for face in faces] == [str(f["age_years"]) for f in faces]
    # One box and one label (number, age, badge) per face over the photo, and five group bars per face.
    assert page.locator("#overlay rect").count() == 2
    labels = page.locator("#overlay text").all_text_contents()
    decisions = [d["decision"].upper() for d in response.json()["screening"]["faces"]]
    assert labels == [f"{f['face']}: {f['age_years']}{d}" for f, d in zip(faces, decisions)]
    assert page.locator(".groups tr").count() == 10
    assert "2 faces found" in page.inner_text("[data-testid=message]")
    wait_until(page, "#photo", "img => img.complete && img.naturalWidth > 0")
    asked = os.environ.get("AGEDETECT_SCREENSHOT")
    screenshot = ROOT / asked if asked else tmp_path / "web.png"  # a relative path is from the repo root
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000
    assert page.errors == []  # type: ignore[attr-defined]


def test_no_face_and_not_an_image_get_messages(page, tmp_path: Path) -> None:
    assert upload(page, NO_FACES / "114740.jpg").status == 200  # an answer: no face, so refer
    expect(page.locator("[data-testid=message]")).to_contain_text("No face found")
    assert page.locator("[data-testid=face]").count() == 0

    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    assert upload(page, text).status == 415
    expect(page.locator("[data-testid=message]")).to_contain_text("not an image")


def test_camera_capture_is_sent(page) -> None:
    """Open the camera, capture a frame, and the frame is uploaded (the fake camera's test
    pattern holds no face, so the answer is the no-face message)."""
    page.click("#camera-open")
    wait_until(page, "#video", "video => video.videoWidth > 0")
    with page.expect_response("**/api/v1/check") as answer:
        page.click("#camera-shoot")
    assert answer.value.status == 200 and answer.value.json()["faces"] == []  # the test pattern has no face
    assert answer.value.request.headers["content-type"].startswith("multipart/form-data")
    assert page.locator("#camera").is_hidden()
    expect(page.locator("[data-testid=message]")).to_contain_text("No face found")


# ---------------------------------------------------------------- Live mode
#
# Chromium's fake camera plays ``couple.y4m`` (a slow pan over ``people/couple.jpg``, two
# adults, forwards then backwards so its loop has no jump) through
# ``--use-file-for-fake-video-capture``. "Live age check" must show each person's progress,
# then a PASS for both once they have enough frames, with their boxes drawn on the feed.
# ``AGEDETECT_SCREENSHOT_LIVE=docs/img/live.png`` refreshes the README's picture.


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    from agedetect.inference import AgeEstimator

    frames = list(pan_and_zoom(couple_shot(AgeEstimator(threads=1), 3.0), 10))
    return write_y4m(tmp_path_factory.mktemp("camera") / "couple.y4m", frames + frames[::-1], 10)


def poll(check, what: str, timeout: float = 60.0) -> None:
    """Poll ``check()`` (Playwright locators) until true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_live_mode_shows_progress_then_a_decision_per_person(base_url: str, playwright, camera_clip: Path,
                                                          tmp_path: Path) -> None:
    browser, page = open_page(playwright, base_url, f"--use-file-for-fake-video-capture={camera_clip}")
    try:
        page.click("[data-testid=live-open]")
        # Progress first: each person "checking…" with fewer than the server's MIN_FRAMES.
        person = "[data-testid=live-person]"
        poll(lambda: page.locator(f"{person}[data-decision=pending]").count() >= 1, "progress")
        # Then a decision for both people.
        poll(lambda: page.locator(f"{person}[data-decision=pass]").count() == 2, "two PASS decisions")
        people = page.locator("[data-testid=live-person]").all_inner_texts()
        assert len(people) == 2 and all("PASS" in text for text in people), people
        assert "Each person needs" in page.inner_text("[data-testid=live-status]")
        rtts = page.evaluate("window.agedetectLive.rtts.length")
        assert rtts >= 10  # the server's MIN_FRAMES
        asked = os.environ.get("AGEDETECT_SCREENSHOT_LIVE")
        screenshot = ROOT / asked if asked else tmp_path / "live.png"
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 50_000
        page.click("#live-stop")
        assert page.locator("[data-testid=live]").is_hidden()
        assert page.errors == [], page.errors
    finally:
        browser.close()
