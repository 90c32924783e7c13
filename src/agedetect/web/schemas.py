"""The JSON the web API answers with (pydantic models; they also make the OpenAPI docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agedetect.faces import LANDMARK_NAMES
from agedetect.inference import FacePrediction


class FaceResult(BaseModel):
    """One face and its estimated age."""

    face: int = Field(description="the face's number: 1 is the largest, as in every agedetect output")
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in pixels of the upright image (after EXIF rotation)"
    )
    score: float = Field(description="detector confidence that this is a face, 0..1")
    age: float = Field(description="estimated age in years: the median of the model's age distribution")
    age_years: int = Field(description="the estimate in whole years, as shown to people (age rounded, halves up)")
    age_interval: tuple[float, float] = Field(
        description="low, high: whole years holding the central 80% of the model's distribution"
    )
    age_group: str = Field(description="the age group age_years falls in")
    group_probabilities: dict[str, float] = Field(description="each age group's probability, in age order")
    landmarks: dict[str, tuple[float, float]] = Field(
        description=f"(x, y) of {', '.join(LANDMARK_NAMES)}; left/right as seen in the image"
    )

    @classmethod
    def of(cls, prediction: FacePrediction, number: int) -> "FaceResult":
        return cls.model_validate({"face": number} | prediction.to_dict())


class PredictResponse(BaseModel):
    """Every face found in the image (largest first) and the image's upright size."""

    faces: list[FaceResult]
    width: int = Field(description="image width in pixels, after EXIF rotation")
    height: int = Field(description="image height in pixels, after EXIF rotation")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable reason, e.g. no_face, too_large, unsupported_image")
    message: str = Field(description="what was wrong and what to do, for people")
    fields: dict[str, str] | None = Field(
        default=None, description="invalid_request: each form field that was wrong, with what was wrong with it")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str = Field(description="name of the loaded age model")


class ModelInfo(BaseModel):
    """What the page and clients need to know about the model and the limits."""

    name: str
    sha256: str
    input_size: int
    age_groups: list[str]
    interval_mass: float = Field(description="share of the age distribution the interval covers")
    max_upload_bytes: int
    max_pixels: int
