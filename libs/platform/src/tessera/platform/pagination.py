"""CVAT's pagination: `?page=N&page_size=M` in, `{count, next, previous, results}` out.

As CVAT: `page_size` defaults to 10, `all` gives every row on one page, and a value
that is not a positive integer falls back to the default; a page past the last one
(or a `page` that is not a positive integer) is 404 "Invalid page.".
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

from tessera.platform.errors import NotFound

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 10
ALL = "all"


class PageParams(BaseModel):
    """Which page a list request asks for; `page_size` None means every row."""

    page: int
    page_size: int | None

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return 0 if self.page_size is None else (self.page - 1) * self.page_size

    @property
    def limit(self) -> int | None:
        """Rows to return at most (None: no limit)."""
        return self.page_size

    @classmethod
    def parse(cls, page: str | None, page_size: str | None) -> PageParams:
        """Read the two parameters as CVAT does."""
        number = 1 if page in (None, "") else _positive(page)
        if number is None:
            raise NotFound("Invalid page.")
        if page_size == ALL:
            if number > 1:
                raise NotFound("Invalid page.")
            return cls(page=number, page_size=None)
        size = _positive(page_size) if page_size else None
        return cls(page=number, page_size=size or DEFAULT_PAGE_SIZE)


def _positive(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number > 0 else None


def page_params(
    page: Annotated[
        str | None, Query(description="A page number within the paginated result set.")
    ] = None,
    page_size: Annotated[
        str | None,
        Query(description="Number of results to return per page (default 10), or `all`."),
    ] = None,
) -> PageParams:
    """FastAPI dependency reading `page` and `page_size`."""
    return PageParams.parse(page, page_size)


class Page(BaseModel, Generic[T]):
    """One page of a list, with links to its neighbours."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]

    @classmethod
    def build(cls, request: Request, params: PageParams, count: int, results: list[T]) -> Page[T]:
        """Assemble a page, with `next`/`previous` URLs that keep the other query parameters.

        The URLs are on the address the client used (see `tessera.platform.proxying`).
        """
        if params.page > 1 and params.offset >= count:
            raise NotFound("Invalid page.")

        def link(page: int) -> str:
            if page == 1:
                return str(request.url.remove_query_params("page"))
            return str(request.url.include_query_params(page=page))

        has_next = params.offset + len(results) < count
        return cls(
            count=count,
            next=link(params.page + 1) if has_next else None,
            previous=link(params.page - 1) if params.page > 1 else None,
            results=results,
        )
