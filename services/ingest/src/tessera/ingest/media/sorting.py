"""Ordering of a task's files: CVAT's ``sorting_method``."""

import random
import re
from collections.abc import Iterable
from enum import StrEnum
from posixpath import splitext

_DIGITS = re.compile(r"(\d+)")


class SortingMethod(StrEnum):
    """CVAT's ``sorting_method`` values."""

    LEXICOGRAPHICAL = "lexicographical"
    NATURAL = "natural"
    PREDEFINED = "predefined"
    RANDOM = "random"


def sort_names(
    names: Iterable[str], method: SortingMethod | str, *, seed: int | None = None
) -> list[str]:
    """Return ``names`` ordered by ``method``; the input is left as it is.

    - ``lexicographical``: by code point, as Python's ``sorted`` (CVAT does the same).
    - ``natural``: path by path component, runs of digits compared as numbers and letters
      without regard to case, the extension after the stem (``img2.png`` < ``img10.png``,
      ``a/b.png`` < ``a1/a.png``), approximating CVAT's ``natsort.os_sorted`` on Linux.
      Names equal up to case are ordered by code point, so the result never depends on the
      input order.
    - ``predefined``: the given order.
    - ``random``: a shuffle, reproducible for a given ``seed``.

    Raises `ValueError` for an unknown method.
    """
    try:
        method = SortingMethod(method)
    except ValueError:
        choices = ", ".join(m.value for m in SortingMethod)
        raise ValueError(f"unknown sorting method {method!r}; expected one of {choices}") from None
    result = list(names)
    if method is SortingMethod.LEXICOGRAPHICAL:
        result.sort()
    elif method is SortingMethod.NATURAL:
        result.sort(key=lambda name: (_natural_key(name), name))
    elif method is SortingMethod.RANDOM:
        random.Random(seed).shuffle(result)
    return result


def _natural_key(name: str) -> tuple[tuple[str | int, ...], ...]:
    *directories, file_name = name.split("/")
    stem, extension = splitext(file_name)
    return tuple(_chunks(part) for part in (*directories, stem, extension))


def _chunks(part: str) -> tuple[str | int, ...]:
    # re.split with a capturing group alternates text (even places) and digits (odd places),
    # so two keys never compare a str with an int.
    return tuple(
        int(chunk) if i % 2 else chunk.casefold() for i, chunk in enumerate(_DIGITS.split(part))
    )
