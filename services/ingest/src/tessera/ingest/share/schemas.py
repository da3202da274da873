"""Entries of the connected share, as CVAT's `FileInfo`."""

from typing import Literal

from pydantic import BaseModel


class FileInfo(BaseModel):
    """A file or folder of the share."""

    name: str
    type: Literal["REG", "DIR"]
    mime_type: str
