"""The web app: a page to try agedetect on a photo and a small JSON API, on FastAPI.

``create_app()`` builds it (``agedetect serve`` runs it on uvicorn). Layout:
``app.py`` (factory, lifespan, the one error handler, privacy middleware),
``service.py`` (uploads -> predictions, bounded model concurrency), ``routes.py``
(endpoints), ``schemas.py`` (pydantic request/response models), ``static/`` (the page).
"""

from agedetect.web.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
