"""What a new user does on the page, in a real headless Chromium, at a desktop size and
at a 390x844 phone size: each test is one of the page items of issue 12.

The server is the real app on uvicorn (tests/servers.py); photos come from ../shared.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from agedetect.uses import DEFAULT_MAX_MINOR_RISK
from shared_data import BROWSER_TEST, CHROMIUM, NO_FACES, PEOPLE

COUPLE = PEOPLE / "couple.jpg"
MANY = PEOPLE / "selfie-many-people.jpg"
NO_FACE = NO_FACES / "114740.jpg"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

pytestmark = BROWSER_TEST
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, base_url: str):
    """A fresh page at each viewport; every request it makes to /api/ is recorded, and
    any script error fails the test."""
    context = browser.new_context(viewport=VIEWPORTS[request.param], device_scale_factor=1, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "422" not in m.text
            and "415" not in m.text else None)
    page.api_calls = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.api_calls.append(r.url.split("/api/")[1]) if "/api/v1/" in r.url and  # type: ignore[attr-defined]
            not r.url.endswith("/model") else None)
    page.goto(base_url)
    wait_for(lambda: page.inner_text("#limit") != "")  # the upload limit has arrived
    yield page
    assert errors == []
    context.close()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def upload(page, path: Path):
    """Choose a photo; the /api/v1/check answer (``None`` if the page sent nothing)."""
    with page.expect_response("**/api/v1/check") as answer:
        page.set_input_files("[data-testid=file]", str(path))
    response = answer.value
    expect(page.locator("body")).not_to_have_class("busy")
    return response


def shown(page, testid: str) -> bool:
    return page.locator(f"[data-testid={testid}]").is_visible()


# ---------------------------------------------------------------- 1: no stale answer


def test_a_rejected_file_clears_the_earlier_answer(page, tmp_path: Path) -> None:
    assert upload(page, COUPLE).status == 200
    # a verdict is on screen (which one is the model's call), then the rejected file clears it
    expect(page.locator("[data-testid=screening]")).to_contain_text(re.compile(r"^(PASS|REFER)"))
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.set_input_files("[data-testid=file]", str(text))  # refused in the browser: not an image
    expect(page.locator("[data-testid=message]")).to_contain_text("not an image")
    assert not shown(page, "result") and not shown(page, "screening") and page.locator("[data-testid=face]").count() == 0

    upload(page, COUPLE)
    big = tmp_path / "big.jpg"
    big.write_bytes(COUPLE.read_bytes() + b"\0" * 11_000_000)  # over the 10 MB limit
    page.set_input_files("[data-testid=file]", str(big))
    expect(page.locator("[data-testid=message]")).to_contain_text("too large")
    assert not shown(page, "result") and not shown(page, "screening") and not shown(page, "gap")

    upload(page, COUPLE)
    renamed = tmp_path / "notes.jpg"  # claims to be an image: the server refuses it
    renamed.write_text("not a photo")
    assert upload(page, renamed).status == 415
    expect(page.locator("[data-testid=message]")).to_contain_text("not an image")
    assert not shown(page, "result") and not shown(page, "screening")


def test_a_photo_without_a_face_is_shown_and_referred(page) -> None:
    upload(page, COUPLE)
    page.fill("[data-testid=your-age]", "30")
    with page.expect_response("**/api/v1/check"):
        page.locator("[data-testid=your-age]").dispatch_event("change")
    expect(page.locator("[data-testid=gap]")).to_be_visible()
    assert upload(page, NO_FACE).status == 200
    expect(page.locator("[data-testid=message]")).to_contain_text("No face found")
    expect(page.locator("[data-testid=screening]")).to_contain_text("REFER: No face found")
    assert shown(page, "result")  # the photo that was sent stays in view
    wait_for(lambda: page.locator("#photo").evaluate("img => img.complete && img.naturalWidth > 0"))
    assert page.locator("[data-testid=face]").count() == 0 and page.locator("#overlay rect").count() == 0
    assert not shown(page, "gap")  # the couple's age gap is gone


# ---------------------------------------------------------------- 2, 5, 6: one request, a badge per face


def test_every_face_has_its_own_badge_from_one_request(page) -> None:
    response = upload(page, MANY)
    assert page.api_calls == ["v1/check"]  # type: ignore[attr-defined]  # not predict + screen + gap
    body = response.json()
    faces, decided = body["faces"], body["screening"]["faces"]
    assert len(faces) >= 5 and [d["face"] for d in decided] == [f["face"] for f in faces] == list(range(1, len(faces) + 1))
    page.wait_for_selector(f"[data-testid=face] >> nth={len(faces) - 1}")
    badges = page.locator("[data-testid=badge]").all_inner_texts()
    assert badges == [f"{d['decision'].upper()} {d['reason']}" for d in decided]
    assert {"PASS", "REFER"} >= {b.split()[0] for b in badges}
    labels = page.locator("#overlay text").all_text_contents()
    assert labels == [f"{f['face']}: {f['age_years']}{d['decision'].upper()}" for f, d in zip(faces, decided)]
    hint = page.inner_text("#checks .hint")
    assert f"{DEFAULT_MAX_MINOR_RISK * 100:g}%" in hint and "under the legal age" in hint


def test_the_age_shown_and_its_group_agree(page) -> None:
    body = upload(page, MANY).json()
    page.wait_for_selector("[data-testid=face] >> nth=0")
    shown_ages = [int(a) for a in page.locator("[data-testid=age]").all_inner_texts()]
    groups = body["faces"][0]["group_probabilities"].keys()
    for age, face in zip(shown_ages, body["faces"], strict=True):
        assert age == face["age_years"]
        low, _, high = next(g for g in groups if g == face["age_group"]).partition("-")
        assert int(low.rstrip("+")) <= age <= (int(high) if high else 200), (age, face)
    assert all(f"group {f['age_group']}" in t for f, t in
               zip(body["faces"], page.locator("[data-testid=face] .range").all_inner_texts()))


# ---------------------------------------------------------------- 3, 4, 6: the fields


def test_an_empty_or_invalid_field_is_an_error_on_the_field(page) -> None:
    upload(page, COUPLE)
    page.api_calls.clear()  # type: ignore[attr-defined]
    page.fill("#buffer", "")
    page.locator("#buffer").dispatch_event("change")
    expect(page.locator("[data-testid=buffer-error]")).to_have_text("The buffer is empty: enter a whole number from 0 to 100.")
    expect(page.locator("[data-testid=threshold]")).to_have_text("?")
    assert not shown(page, "screening") and page.locator("[data-testid=badge]").count() == 0
    assert page.api_calls == []  # type: ignore[attr-defined]  # nothing sent with a made-up buffer

    page.fill("#buffer", "12")
    with page.expect_response("**/api/v1/check") as answer:
        page.locator("#buffer").dispatch_event("change")
    assert page.api_calls == ["v1/check"]  # type: ignore[attr-defined]  # one request per change
    policy = answer.value.json()["screening"]["policy"]
    assert policy["buffer"] == 12 and policy["threshold"] == 30
    expect(page.locator("[data-testid=threshold]")).to_have_text("30")
    expect(page.locator("[data-testid=buffer-error]")).to_have_text("")
    verdict = page.inner_text("[data-testid=screening]")
    assert "30" in verdict and "25" not in verdict and "28" not in verdict


def test_a_negative_stated_age_reads_as_a_sentence(page, base_url: str) -> None:
    upload(page, COUPLE)
    page.fill("[data-testid=your-age]", "-5")
    page.locator("[data-testid=your-age]").dispatch_event("change")
    expect(page.locator("[data-testid=your-age-error]")).to_have_text("Your age must be a whole number from 0 to 120.")
    assert "Input should" not in page.inner_text("body")
    assert not shown(page, "gap")
    # The server says the same in words when a client sends it anyway.
    answer = httpx.post(f"{base_url}/api/v1/check", files={"image": ("photo", COUPLE.read_bytes())},
                        data={"age": "-5"}, timeout=60)
    assert answer.status_code == 422 and answer.json()["error"]["fields"] == {"age": "Your age must be at least 0."}


def test_the_gap_names_the_face_compared(page) -> None:
    upload(page, MANY)
    page.fill("[data-testid=gap-face]", "2")
    page.fill("[data-testid=your-age]", "30")
    with page.expect_response("**/api/v1/check") as answer:
        page.locator("[data-testid=your-age]").dispatch_event("change")
    gap = answer.value.json()["gap"]
    assert gap["face"] == 2
    expect(page.locator("[data-testid=gap]")).to_contain_text(f"Face 2 of {gap['faces']}: estimated {gap['estimated_years']}")
    page.fill("[data-testid=gap-face]", "99")
    with page.expect_response("**/api/v1/check"):
        page.locator("[data-testid=gap-face]").dispatch_event("change")
    expect(page.locator("[data-testid=gap-face-error]")).to_contain_text("there is no face 99")


# ---------------------------------------------------------------- 7: the answer in view


def test_the_answer_is_brought_into_view(page) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    upload(page, COUPLE)
    page.wait_for_selector("[data-testid=face] >> nth=1")

    def in_view() -> bool:
        top, height = page.evaluate("[document.getElementById('answer').getBoundingClientRect().top, innerHeight]")
        return 0 <= top < height * 0.5

    wait_for(in_view, timeout=5)


# ---------------------------------------------------------------- 8: downloads


def test_downloads_are_made_in_the_browser(page, tmp_path: Path) -> None:
    body = upload(page, COUPLE).json()
    wait_for(lambda: page.locator("#photo").evaluate("img => img.complete && img.naturalWidth > 0"))
    calls = len(page.api_calls)  # type: ignore[attr-defined]
    with page.expect_download() as download:
        page.click("[data-testid=download-json]")
    saved = tmp_path / "answer.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text()) == body
    with page.expect_download() as download:
        page.click("[data-testid=download-photo]")
    assert download.value.url.startswith("blob:")
    picture = tmp_path / "photo.png"
    download.value.save_as(picture)
    assert len(page.api_calls) == calls  # type: ignore[attr-defined]  # nothing went to the server
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.size == (body["width"], body["height"])
        rgb = image.convert("RGB")
        # Each face's box is drawn in its colour: sample the middle of its left edge.
        for face, colour in zip(body["faces"], [(0xE4, 0x57, 0x2E), (0x17, 0xBE, 0xBB)]):
            x1, y1, _, y2 = face["box"]
            pixel = rgb.getpixel((round(x1), round((y1 + y2) / 2)))
            assert max(abs(a - b) for a, b in zip(pixel, colour)) < 40, (pixel, colour)
