"""The street-office API: FastAPI app with /api/v1, Open311 GeoReport v2 and the clerks' pages."""

from triage.api.app import create_app

__all__ = ["create_app"]
