"""What an annotation import is asked to do, as CVAT 2.80's clients ask it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ImportMode = Literal["replace", "append"]
ImportTargetKind = Literal["task", "job"]


class ImportParams(BaseModel):
    """One import: into what, from which file (`filename`: the uploaded file's name, or
    the key of a cloud storage's object), in which format, how."""

    model_config = ConfigDict(frozen=True)

    target: ImportTargetKind
    target_id: int
    format: str
    filename: str
    mode: ImportMode = "replace"
    conv_mask_to_poly: bool = False
    strict: bool = False


class ImportCreated(BaseModel):
    """The `202` answer of `Upload-Finish`: the request to poll at `/api/requests/{rq_id}`."""

    rq_id: str
