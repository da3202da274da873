"""CVAT-style pagination: `?page=N&page_size=M` in, `{count, next, previous, results}` out."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

T = TypeVar("T")
MAX_PAGE_SIZE = 1000


class PageParams(BaseModel):
    """Which page a list request asks for."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size


def page_params(
    page: Annotated[
        int, Query(ge=1, description="A page number within the paginated result set.")
    ] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Number of results to return per page.")
    ] = 10,
) -> PageParams:
    """FastAPI dependency reading `page` and `page_size`."""
    return PageParams(page=page, page_size=page_size)


class Page(BaseModel, Generic[T]):
    """One page of a list, with links to its neighbours."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]

    @classmethod
    def build(cls, request: Request, params: PageParams, count: int, results: list[T]) -> Page[T]:
        """Assemble a page, with `next`/`previous` URLs that keep the other query parameters."""

        def link(page: int) -> str:
            return str(request.url.include_query_params(page=page, page_size=params.page_size))

        has_next = params.offset + len(results) < count
        return cls(
            count=count,
            next=link(params.page + 1) if has_next else None,
            previous=link(params.page - 1) if params.page > 1 else None,
            results=results,
        )
