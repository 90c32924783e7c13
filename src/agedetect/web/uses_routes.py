"""Endpoints for the uses of an age estimate: ``POST /api/v1/screen``, ``POST /api/v1/gap``,
and ``POST /api/v1/check``, which answers in one request all the page shows (every face,
the age check for each, and the age gap when an age is given).

Thin, as the other routes: the upload goes through the app's :class:`PredictionService`
(same limits, in memory only, bounded model work), the decision through
:mod:`agedetect.uses`, and errors through the app's one handler (413/415/422).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, Form
from pydantic import BaseModel, Field

from agedetect.errors import NoSuchFaceError
from agedetect.uses import (
    DEFAULT_MAX_MINOR_RISK, ScreeningPolicy, choose_face, compare_age, decide_screening, typical_error,
)
from agedetect.web.errors import UPLOAD_ERROR_RESPONSES, InvalidFields
from agedetect.web.routes import ImageUpload, Service
from agedetect.web.schemas import FaceResult

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
    face: int = Field(description="the face's number: 1 is the largest")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels of the upright image")
    age: float
    age_years: int = Field(description="the estimate in whole years, as shown")
    age_interval: tuple[float, float]
    decision: Literal["pass", "refer"]
    reason: str = Field(description="why this face passes or is referred, in words")


class Screening(BaseModel):
    """``pass`` when every face passes; otherwise ``refer`` (a person checks ID). A photo
    with no face is referred."""

    decision: Literal["pass", "refer"]
    message: str
    policy: Policy
    faces: list[ScreenedFace]


class ScreenResponse(Screening):
    width: int
    height: int


class Gap(BaseModel):
    """The estimated age of one face (the largest unless ``face`` is given) beside the stated age."""

    stated_age: int
    estimated_age: float
    estimated_years: int = Field(description="the estimate in whole years, as shown")
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
    faces: int = Field(description="faces found in the photo")
    face: int = Field(description="the number of the face compared (1 = the largest)")


class GapResponse(Gap):
    width: int
    height: int


class CheckResponse(BaseModel):
    """Everything the page shows for one photo. A photo with no face is an answer here
    (``faces`` empty, the age check ``refer``, ``gap`` null), not an error."""

    faces: list[FaceResult] = Field(description="every face, largest first, as /api/v1/predict answers")
    screening: Screening
    gap: Optional[Gap] = Field(description="the age gap, when an age was given and the photo has a face")
    width: int
    height: int


# ---------------------------------------------------------------------- form fields

MinAge = Annotated[int, Form(ge=0, le=100, description="The legal age.")]
Buffer = Annotated[int, Form(ge=0, le=100, description="Years above min_age to pass (18 + 7: Challenge 25).")]
BasisField = Annotated[Basis, Form(description="Decide on the estimate, or (stricter) the interval's low end.")]
MaxRisk = Annotated[float, Form(ge=0.0, le=1.0, description=(
    "Also refer a face the model gives more than this probability of being under min_age (1: no cap)."))]
ContextField = Annotated[Context, Form(description="self: how old do I look; profile: is this photo recent?")]
FaceNumber = Annotated[Optional[int], Form(ge=1, description="The face to compare: 1 (the largest, the default), 2, ...")]


def policy_fields(min_age: MinAge = 18, buffer: Buffer = 7, basis: BasisField = "estimate",
                  max_risk: MaxRisk = DEFAULT_MAX_MINOR_RISK) -> ScreeningPolicy:
    """The age-check policy from its form fields (shared by /screen and /check)."""
    if min_age + buffer > 100:
        raise InvalidFields({"buffer": "The legal age plus the buffer must be at most 100, the model's oldest age."})
    return ScreeningPolicy(min_age, buffer, basis, None if max_risk >= 1.0 else max_risk)


PolicyFields = Annotated[ScreeningPolicy, Depends(policy_fields)]


# ---------------------------------------------------------------------- endpoints


@router.post("/api/v1/screen", response_model=ScreenResponse, responses=UPLOAD_ERROR_RESPONSES)
async def screen(image: ImageUpload, service: Service, policy: PolicyFields) -> ScreenResponse:
    """Age check on a photo: each face passes if its estimated age is at least
    ``min_age + buffer`` (and the model's probability of it being under ``min_age`` is
    within ``max_risk``); the photo passes when every face does. Anything else, including
    no face, is ``refer``: a person checks ID. The photo is processed in memory and forgotten."""
    analysis = await service.analyse(await service.read_upload(image))
    result = decide_screening(analysis.faces, policy)
    return ScreenResponse.model_validate(result.to_dict() | {"width": analysis.width, "height": analysis.height})


@router.post("/api/v1/gap", response_model=GapResponse, responses=UPLOAD_ERROR_RESPONSES)
async def gap(
    image: ImageUpload,
    service: Service,
    age: Annotated[int, Form(ge=0, le=120, description="The stated age, in whole years.")],
    context: ContextField = "self",
    face: FaceNumber = None,
) -> GapResponse:
    """Compare the estimated age of one face (the largest unless ``face`` is given) with a
    stated age. ``unusual`` when the gap is more than the model's own error at that age
    usually is; not a health measure. No face: 422 ``no_face``; no such face: 422 ``no_such_face``."""
    error = typical_error(service.estimator.metadata, age)  # a model without it: 503, before the work
    analysis = await service.analyse(await service.read_upload(image))
    number = choose_face(analysis.faces, face)
    result = compare_age(analysis.faces[number - 1], age, error, context=context, faces=len(analysis.faces),
                         face=number)
    return GapResponse.model_validate(result.to_dict() | {"width": analysis.width, "height": analysis.height})


@router.post("/api/v1/check", response_model=CheckResponse, responses=UPLOAD_ERROR_RESPONSES)
async def check(
    image: ImageUpload,
    service: Service,
    policy: PolicyFields,
    age: Annotated[Optional[int], Form(ge=0, le=120, description="A stated age for the age gap (optional).")] = None,
    context: ContextField = "self",
    face: FaceNumber = None,
) -> CheckResponse:
    """All the page shows, in one request: every face (as /api/v1/predict), the age check
    for each face and the photo (as /api/v1/screen), and, when ``age`` is given, the age gap
    of face ``face`` (as /api/v1/gap). A photo with no face is answered 200 with no faces and
    the age check ``refer``; a ``face`` the photo does not have is 422 ``invalid_request``."""
    error = typical_error(service.estimator.metadata, age) if age is not None else None
    analysis = await service.analyse(await service.read_upload(image))
    compared = None
    if error is not None and analysis.faces:
        try:
            number = choose_face(analysis.faces, face, "The photo")
        except NoSuchFaceError as problem:
            raise InvalidFields({"face": f"{problem}."}) from None
        compared = compare_age(analysis.faces[number - 1], age, error, context=context,  # type: ignore[arg-type]
                               faces=len(analysis.faces), face=number).to_dict()
    return CheckResponse.model_validate({
        "faces": [FaceResult.of(p, number).model_dump() for number, p in enumerate(analysis.faces, start=1)],
        "screening": decide_screening(analysis.faces, policy).to_dict(),
        "gap": compared,
        "width": analysis.width,
        "height": analysis.height,
    })
