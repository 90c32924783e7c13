"""The endpoints. Each is thin: take the request, call the service, shape the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import FileResponse

from agedetect.ages import INTERVAL_MASS
from agedetect.errors import NoFaceError
from agedetect.web.errors import UPLOAD_ERROR_RESPONSES
from agedetect.web.schemas import FaceResult, Health, ModelInfo, PredictResponse
from agedetect.web.service import PredictionService

STATIC = Path(__file__).resolve().parent / "static"

#: The page loads only its own files; photos are shown from blob: URLs made in the browser.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)

router = APIRouter()


def get_service(request: Request) -> PredictionService:
    return request.app.state.service


Service = Annotated[PredictionService, Depends(get_service)]
ImageUpload = Annotated[
    UploadFile,
    File(description="The photo: JPEG, PNG, WebP, BMP, TIFF or GIF; see /api/v1/model for the limits."),
]


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})


@router.get("/healthz", response_model=Health, tags=["service"])
async def healthz(service: Service) -> Health:
    """Answers once the model is loaded and the server takes requests."""
    return Health(model=str(service.estimator.metadata.get("name", "age_model")))


@router.get("/api/v1/model", response_model=ModelInfo, tags=["service"])
async def model_info(service: Service) -> ModelInfo:
    """The loaded model (name, checksum, input size, age groups) and the upload limits."""
    estimator = service.estimator
    return ModelInfo(
        name=str(estimator.metadata.get("name", "age_model")),
        sha256=str(estimator.metadata["sha256"]),
        input_size=estimator.input_size,
        age_groups=list(estimator.groups.labels),
        interval_mass=INTERVAL_MASS,
        max_upload_bytes=service.max_upload_bytes,
        max_pixels=service.max_pixels,
    )


@router.post("/api/v1/predict", response_model=PredictResponse, responses=UPLOAD_ERROR_RESPONSES, tags=["ages"])
async def predict(image: ImageUpload, service: Service) -> PredictResponse:
    """Find every face in the photo and estimate its age, with an 80% interval and the
    age-group probabilities. A photo with no face is answered 422 with code ``no_face``.
    The photo is processed in memory and forgotten: never stored, never logged."""
    analysis = await service.analyse(await service.read_upload(image))
    if not analysis.faces:
        raise NoFaceError(
            "no face found in the photo; use one where a face is clearly visible, "
            "roughly frontal and at least 24 pixels wide"
        )
    return PredictResponse(
        faces=[FaceResult.of(face, number) for number, face in enumerate(analysis.faces, start=1)], width=analysis.width, height=analysis.height
    )
