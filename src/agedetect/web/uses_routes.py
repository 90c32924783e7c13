"""Endpoints for the uses of an age estimate: ``POST /api/v1/screen`` and ``POST /api/v1/gap``.

Thin, as the other routes: the upload goes through the app's :class:`PredictionService`
(same limits, in memory only, bounded model work), the decision through
:mod:`agedetect.uses`, and errors through the app's one handler (413/415/422).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException
from pydantic import BaseModel, Field

from agedetect.errors import NoFaceError
from agedetect.uses import ScreeningPolicy, compare_age, decide_screening, typical_error
from agedetect.web.errors import UPLOAD_ERROR_RESPONSES
from agedetect.web.routes import ImageUpload, Service

router = APIRouter(tags=["uses"])

Basis = Literal["estimate", "interval_low"]
Context = Literal["self", "profile"]
# These list what agedetect.uses accepts (SCREENING_BASES, GAP_CONTEXTS); tests/test_uses.py checks.


# ---------------------------------------------------------------------- schemas


class Policy(BaseModel):
    min_age: int = Field(description="the legal age")
    buffer: int = Field(description="years above the legal age a face must look to pass")
    threshold: int = Field(description="min_age + buffer: the age an estimate must reach")
    basis: Basis = Field(description="estimate (the median age) or interval_low (low end of the 80% interval)")
    max_minor_risk: float | None = Field(
        description="faces the model gives more than this probability of being under min_age are referred")


class ScreenedFace(BaseModel):
    face: int = Field(description="index of the face, largest first")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels of the upright image")
    age: float
    age_interval: tuple[float, float]
    decision: Literal["pass", "refer"]


class ScreenResponse(BaseModel):
    """``pass`` when every face looks ``threshold`` or over; otherwise ``refer`` (a person
    checks ID). A photo with no face is referred."""

    decision: Literal["pass", "refer"]
    message: str
    policy: Policy
    faces: list[ScreenedFace]
    width: int
    height: int


class GapResponse(BaseModel):
    """The estimated age of the main (largest) face beside the stated age."""

    stated_age: int
    estimated_age: float
    age_interval: tuple[float, float]
    gap: float = Field(description="estimated_age - stated_age: positive when the face looks older")
    typical_error: float = Field(description="the model's mean absolute error for people of the stated age")
    unusual_above: float = Field(description="90th-percentile error for that age: a larger |gap| is unusual")
    typical_error_band: str
    unusual: bool = Field(description="|gap| > unusual_above: more than the model's own error usually explains")
    looks: Literal["older", "younger", "about as stated"]
    message: str = Field(description="the result in words; never a diagnosis")
    note: str
    context: Context
    box: tuple[float, float, float, float]
    faces: int = Field(description="faces found; the largest is compared")
    width: int
    height: int


# ---------------------------------------------------------------------- endpoints


@router.post("/api/v1/screen", response_model=ScreenResponse, responses=UPLOAD_ERROR_RESPONSES)
async def screen(
    image: ImageUpload,
    service: Service,
    min_age: Annotated[int, Form(ge=0, le=100, description="The legal age.")] = 18,
    buffer: Annotated[int, Form(ge=0, le=100, description="Years above min_age to pass (18 + 7: Challenge 25).")] = 7,
    basis: Annotated[Basis, Form(description="Decide on the estimate, or (stricter) the interval's low end.")] = "estimate",
    max_risk: Annotated[float, Form(ge=0.0, le=1.0, description=(
        "Also refer a face the model gives more than this probability of being under min_age (1: no cap)."))] = 0.025,
) -> ScreenResponse:
    """Age check on a photo: ``pass`` if every face's estimated age is at least
    ``min_age + buffer``; anything else, including no face, is ``refer``: a person
    checks ID. The photo is processed in memory and forgotten."""
    try:
        policy = ScreeningPolicy(min_age, buffer, basis, None if max_risk >= 1.0 else max_risk)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    analysis = await service.analyse(await service.read_upload(image))
    result = decide_screening(analysis.faces, policy)
    return ScreenResponse.model_validate(result.to_dict() | {"width": analysis.width, "height": analysis.height})


@router.post("/api/v1/gap", response_model=GapResponse, responses=UPLOAD_ERROR_RESPONSES)
async def gap(
    image: ImageUpload,
    service: Service,
    age: Annotated[int, Form(ge=0, le=120, description="The stated age, in whole years.")],
    context: Annotated[Context, Form(description="self: how old do I look; profile: is this photo recent?")] = "self",
) -> GapResponse:
    """Compare the estimated age of the photo's main face with a stated age. ``unusual``
    when the gap is more than the model's own error at that age usually is; not a health
    measure. No face: 422 ``no_face``."""
    error = typical_error(service.estimator.metadata, age)  # a model without it: 503, before the work
    analysis = await service.analyse(await service.read_upload(image))
    if not analysis.faces:
        raise NoFaceError("no face found in the photo, so there is no age to compare; use one where a face is clearly visible")
    result = compare_age(analysis.faces[0], age, error, context=context, faces=len(analysis.faces))
    return GapResponse.model_validate(result.to_dict() | {"width": analysis.width, "height": analysis.height})
