"""Write the README's example answer of ``POST /api/v1/predict`` from what the shipped
model says on ``people/couple.jpg`` (in ../shared), so those figures are produced, not typed.

    .venv/bin/python scripts/readme_example.py           # rewrites the example in README.md
    .venv/bin/python scripts/readme_example.py --check   # exit 1 if README.md's example is stale

Run it after the shipped model changes; tests/test_docs.py fails until the README agrees
with the model (to the digits it prints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PHOTO = ROOT.parent / "shared" / "data" / "photos" / "people" / "couple.jpg"
#: The example follows this line of the README.
CURL = "curl -F image=@couple.jpg http://127.0.0.1:8000/api/v1/predict"


def answer(photo: Path = PHOTO, model: Path | None = None) -> dict:
    """The API's answer for ``photo``, through the app itself (in process)."""
    import warnings

    from agedetect.web import create_app

    with warnings.catch_warnings():  # Starlette's note that its test client will move to httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    with TestClient(create_app(model=model)) as client:
        response = client.post("/api/v1/predict", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")})
    response.raise_for_status()
    return response.json()


def render(body: dict) -> str:
    """The README's shortened layout of an answer: the first face in full but for three of
    its landmarks, then the second face's box and age."""
    first, second = body["faces"][:2]
    odds = ", ".join(f'"{name}": {value:.2f}' for name, value in first["group_probabilities"].items())
    eye = first["landmarks"]["left_eye"]
    return (
        f'{{"faces": [{{"face": 1, "box": {json.dumps(first["box"])}, "score": {first["score"]}, "age": {first["age"]},\n'
        f'            "age_years": {first["age_years"]}, "age_interval": {json.dumps(first["age_interval"])}, '
        f'"age_group": "{first["age_group"]}",\n'
        f'            "group_probabilities": {{{odds}}},\n'
        f'            "landmarks": {{"left_eye": {json.dumps(eye)}, "...": "..."}}}},\n'
        f'           {{"face": 2, "box": {json.dumps(second["box"])}, "age": {second["age"]}, '
        f'"age_years": {second["age_years"]}, "...": "..."}}],\n'
        f' "width": {body["width"]}, "height": {body["height"]}}}\n'
    )


def example_span(text: str) -> tuple[int, int]:
    """Where the example's JSON (inside its ```json fence) lies in the README's text."""
    start = text.index("```json\n", text.index(CURL)) + len("```json\n")
    return start, text.index("```", start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when README.md differs")
    args = parser.parse_args()
    text = README.read_text()
    start, end = example_span(text)
    fresh = render(answer())
    if args.check:
        if text[start:end] != fresh:
            print(f"README.md's example is stale; the shipped model says:\n{fresh}", file=sys.stderr)
            return 1
        return 0
    README.write_text(text[:start] + fresh + text[end:])
    print(f"wrote the example in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
