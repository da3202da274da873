"""Type aliases shared by the media modules."""

import os
from typing import TypeAlias

StrPath: TypeAlias = str | os.PathLike[str]
