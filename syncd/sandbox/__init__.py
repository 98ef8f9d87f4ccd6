"""Faithful vendor API emulators on loopback: the kit they share (see ``syncd.sandbox.kit``)."""

from syncd.sandbox.data import AWKWARD_NAMES, SeededData, iso_z
from syncd.sandbox.faults import Fault, FaultInjector, FaultRule
from syncd.sandbox.kit import Sandbox, toml_string, toml_table
from syncd.sandbox.routing import HTTPError, Request, Response, Router
from syncd.sandbox.server import LoggedRequest, RequestLog, SandboxServer

__all__ = [
    "AWKWARD_NAMES",
    "Fault",
    "FaultInjector",
    "FaultRule",
    "HTTPError",
    "LoggedRequest",
    "Request",
    "RequestLog",
    "Response",
    "Router",
    "Sandbox",
    "SandboxServer",
    "SeededData",
    "iso_z",
    "toml_string",
    "toml_table",
]
