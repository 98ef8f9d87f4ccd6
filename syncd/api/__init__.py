"""The daemon's HTTP app (FastAPI on uvicorn): health, readiness, metrics, status, payments."""

from syncd.api.app import create_app, protected_routers
from syncd.api.context import ApiContext, SchedulerState
from syncd.api.server import ApiServer

__all__ = ["ApiContext", "ApiServer", "SchedulerState", "create_app", "protected_routers"]
