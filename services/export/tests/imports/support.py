"""What the readers' tests share: uploads made in memory."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tessera.export.imports.files import ImportFiles, files_of


def zipped(members: dict[str, bytes]) -> bytes:
    """The members in a zip archive, in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def upload(members: dict[str, bytes | str], tmp_path: Path) -> ImportFiles:
    """An `ImportFiles` over a zip of the members (text as UTF-8)."""
    data = {k: v.encode() if isinstance(v, str) else v for k, v in members.items()}
    return files_of(zipped(data), "upload.zip", tmp_path)
