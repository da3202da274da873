"""Tessera's Python client (`Client`, `AsyncClient`) and command-line tool (`tessera`).

Installed on its own (`pip install tessera-client`): it speaks Tessera's public API (CVAT's
paths) over HTTP and imports nothing of the server.
"""

from tessera.client.client import AsyncClient, Client
from tessera.client.config import ConfigError
from tessera.client.errors import FieldError, ProtocolError, RequestFailed, TesseraError
from tessera.client.models import (
    About,
    Annotations,
    CloudContent,
    CloudEntry,
    CloudStorage,
    DataMeta,
    FormatInfo,
    Formats,
    FrameMeta,
    Function,
    FunctionCall,
    Job,
    Label,
    LabelSpec,
    Page,
    Project,
    Request,
    ReviewShape,
    Shape,
    Task,
    User,
)
from tessera.client.operations import KEEP

__all__ = [
    "KEEP",
    "About",
    "Annotations",
    "AsyncClient",
    "Client",
    "CloudContent",
    "CloudEntry",
    "CloudStorage",
    "ConfigError",
    "DataMeta",
    "FieldError",
    "FormatInfo",
    "Formats",
    "FrameMeta",
    "Function",
    "FunctionCall",
    "Job",
    "Label",
    "LabelSpec",
    "Page",
    "Project",
    "ProtocolError",
    "Request",
    "RequestFailed",
    "ReviewShape",
    "Shape",
    "Task",
    "TesseraError",
    "User",
]
