"""agedetect: estimate a person's age from a photo of their face.

>>> import agedetect
>>> 'AgeEstimator' in agedetect.__all__
True

Names are imported on first use, so ``import agedetect`` loads no model and no
ONNX Runtime.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# ONNX Runtime (1.30) records usage telemetry from import on: files in $TMPDIR and a queue
# under ~/.cache. agedetect handles people's photos and promises to write nothing, so it
# is switched off before any submodule imports onnxruntime (users may still opt back in).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

_EXPORTS = {
    "load_image": "agedetect.images",
    "detect_faces": "agedetect.faces",
    "align": "agedetect.faces",
    "Face": "agedetect.faces",
    "AgeGroups": "agedetect.labels",
    "parse_utkface_name": "agedetect.labels",
    "decode_ages": "agedetect.ages",
    "AgeEstimator": "agedetect.inference",
    "FacePrediction": "agedetect.inference",
    "AgeDetectError": "agedetect.errors",
    "ImageError": "agedetect.errors",
    "UnreadableImageError": "agedetect.errors",
    "ImageTooLargeError": "agedetect.errors",
    "NoFaceError": "agedetect.errors",
    "ModelError": "agedetect.errors",
    "DataError": "agedetect.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agedetect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
