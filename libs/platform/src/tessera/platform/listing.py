"""CVAT's list parameters turned into SQL: `sort`, `search`, simple filters, `filter`.

A resource declares its `ListSpec`: the fields a client may filter and sort on, each an
SQL expression over the resource's table (a correlated subquery for a related name such
as `owner`), which of them `search` looks in, and which are simple filters
(`?status=annotation`). `list_query(spec)` is the FastAPI dependency that reads the
parameters, with `page` and `page_size`, into a `ListQuery` holding the SQL condition
and ordering. As CVAT:

- `sort`: comma-separated field names, `-` for descending; the default order otherwise.
- `search`: terms split on spaces and commas (a "quoted phrase" is one term); every
  term must occur, case-insensitively, in at least one of the search fields.
- simple filters: exact values (`?name=cars&owner=alice`); several are all required.
- `filter`: a JSON Logic rule over the fields: `and`, `or`, `!`, `!!`, `var` (is set),
  `==`, `!=`, `<`, `<=`, `>`, `>=`, `<=` with three arguments (between, inclusive),
  `in` with a list (one of) or with a string first (the field contains it).

Where CVAT silently ignores an unknown `sort` field, Tessera answers 400 naming the
parameter, like every other malformed list parameter.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query, Request

from tessera.platform.errors import Problem, bad_request
from tessera.platform.pagination import PageParams

Kind = Literal["str", "int", "bool", "datetime"]
_SEARCH_TERMS = re.compile(r'"([^"]*)"|([^\s,"]+)')
_COMPARISONS: dict[str, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
    "==": lambda expr, value: expr == value,
    "!=": lambda expr, value: expr != value,
    "<": lambda expr, value: expr < value,
    "<=": lambda expr, value: expr <= value,
    ">": lambda expr, value: expr > value,
    ">=": lambda expr, value: expr >= value,
}


@dataclass(frozen=True)
class Field:
    """A field of a list: its SQL expression, its type, and its allowed values if fixed."""

    expr: sa.ColumnElement[Any]
    kind: Kind = "str"
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ListSpec:
    """What a list endpoint lets clients sort, search and filter on."""

    fields: Mapping[str, Field]
    search: tuple[str, ...] = ()
    simple: tuple[str, ...] = ()
    default_sort: tuple[str, ...] = ("-id",)

    def __post_init__(self) -> None:
        reserved = {"page", "page_size", "sort", "search", "filter"} & set(self.simple)
        if reserved:
            raise ValueError(f"simple filters cannot be named {sorted(reserved)}")
        named = [*self.search, *self.simple, *(n.removeprefix("-") for n in self.default_sort)]
        unknown = sorted({name for name in named if name not in self.fields})
        if unknown:
            raise ValueError(f"ListSpec names fields it does not define: {unknown}")


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request: which page, and the SQL condition and ordering to apply."""

    page: PageParams
    condition: sa.ColumnElement[bool]
    ordering: tuple[sa.ColumnElement[Any], ...] = field(default=())

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return self.page.offset

    @property
    def limit(self) -> int | None:
        """Rows to return at most (None: every row)."""
        return self.page.limit


def _coerce(spec_field: Field, name: str, value: Any, parameter: str) -> Any:
    """A client's value as the field's type; 400 naming `parameter` when it is not one."""
    if value is None:
        return None
    kind = spec_field.kind
    try:
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind == "datetime":
            if not isinstance(value, str):
                raise ValueError
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"{name}: {value!r} is not a valid {kind}", parameter) from None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise bad_request(f"{name}: {value!r} is not a valid {kind}", parameter)
    text = str(value)
    if spec_field.choices is not None and text not in spec_field.choices:
        raise bad_request(
            f"{name}: {text!r} is not one of {', '.join(spec_field.choices)}", parameter
        )
    return text


def _field(spec: ListSpec, name: Any, parameter: str) -> Field:
    if not isinstance(name, str) or name not in spec.fields:
        raise bad_request(
            f"{parameter}: {name!r} is not a field of this list; "
            f"the fields are {', '.join(sorted(spec.fields))}",
            parameter,
        )
    return spec.fields[name]


def _text(expr: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    return sa.cast(expr, sa.Text)


class _Rules:
    """Compiles JSON Logic rules over one spec's fields."""

    def __init__(self, spec: ListSpec) -> None:
        self.spec = spec

    def fail(self, message: str) -> Problem:
        return bad_request(f"filter: {message}", "filter")

    def var(self, operand: Any) -> tuple[str, Field]:
        if not (isinstance(operand, dict) and set(operand) == {"var"}):
            raise self.fail(f"expected {{'var': <field>}}, got {json.dumps(operand)}")
        name = operand["var"]
        return name, _field(self.spec, name, "filter")

    def value(self, name: str, spec_field: Field, value: Any) -> Any:
        if isinstance(value, dict | list):
            raise self.fail(f"{name} is compared with {json.dumps(value)}, not a value")
        return _coerce(spec_field, name, value, "filter")

    def single(self, args: Any) -> Any:
        """A unary operator's operand: the rule itself or a one-element list of it."""
        if isinstance(args, list):
            if len(args) != 1:
                raise self.fail("a unary operator takes one rule")
            return args[0]
        return args

    def compile(self, rule: Any) -> sa.ColumnElement[bool]:
        if not isinstance(rule, dict) or len(rule) != 1:
            raise self.fail(f"a rule is an object with one operator, got {json.dumps(rule)}")
        operator, args = next(iter(rule.items()))
        if operator in ("and", "or"):
            if not isinstance(args, list) or not args:
                raise self.fail(f"{operator} takes a non-empty list of rules")
            parts = [self.compile(arg) for arg in args]
            return sa.and_(*parts) if operator == "and" else sa.or_(*parts)
        if operator == "!":
            return sa.not_(self.compile(self.single(args)))
        if operator == "!!":
            return self.compile(self.single(args))
        if operator == "var":
            _, spec_field = self.var({"var": self.single(args)})
            return spec_field.expr.is_not(None)
        if not isinstance(args, list):
            raise self.fail(f"{operator} takes a list of arguments")
        if operator == "<=" and len(args) == 3:
            name, spec_field = self.var(args[1])
            low, high = (self.value(name, spec_field, v) for v in (args[0], args[2]))
            return spec_field.expr.between(low, high)
        if operator in _COMPARISONS and len(args) == 2:
            name, spec_field = self.var(args[0])
            value = self.value(name, spec_field, args[1])
            if value is None and operator in ("==", "!="):
                return (
                    spec_field.expr.is_(None) if operator == "==" else spec_field.expr.is_not(None)
                )
            return _COMPARISONS[operator](spec_field.expr, value)
        if operator == "in" and len(args) == 2:
            if isinstance(args[0], dict):
                name, spec_field = self.var(args[0])
                if not isinstance(args[1], list):
                    raise self.fail(f"in: the values of {name} must be a list")
                return spec_field.expr.in_([self.value(name, spec_field, v) for v in args[1]])
            name, spec_field = self.var(args[1])
            if not isinstance(args[0], str):
                raise self.fail(f"in: {name} can only contain a string")
            return _text(spec_field.expr).contains(args[0], autoescape=True)
        raise self.fail(f"{operator} with {json.dumps(args)} is not supported")


def _search(spec: ListSpec, text: str) -> sa.ColumnElement[bool]:
    terms = [quoted or bare for quoted, bare in _SEARCH_TERMS.findall(text)]

    def anywhere(term: str) -> sa.ColumnElement[bool]:
        return sa.or_(
            *(
                _text(spec.fields[name].expr).icontains(term, autoescape=True)
                for name in spec.search
            )
        )

    return sa.and_(sa.true(), *(anywhere(term) for term in terms if term))


def _ordering(spec: ListSpec, sort: str | None) -> tuple[sa.ColumnElement[Any], ...]:
    keys = [key.strip() for key in (sort or "").split(",") if key.strip()] or list(
        spec.default_sort
    )
    ordering: list[sa.ColumnElement[Any]] = []
    for key in keys:
        expr = _field(spec, key.removeprefix("-"), "sort").expr
        ordering.append(expr.desc() if key.startswith("-") else expr.asc())
    if "id" in spec.fields and not {key.removeprefix("-") for key in keys} & {"id"}:
        ordering.append(spec.fields["id"].expr.asc())
    return tuple(ordering)


def parse_list_query(spec: ListSpec, query: Mapping[str, str]) -> ListQuery:
    """A list request's parameters, checked against `spec`, as SQL."""
    page = PageParams.parse(query.get("page"), query.get("page_size"))
    conditions: list[sa.ColumnElement[bool]] = []
    for name in spec.simple:
        value = query.get(name)
        if value:
            spec_field = spec.fields[name]
            conditions.append(spec_field.expr == _coerce(spec_field, name, value, name))
    if query.get("search") and spec.search:
        conditions.append(_search(spec, query["search"]))
    if query.get("filter"):
        try:
            rule = json.loads(query["filter"])
        except json.JSONDecodeError as exc:
            raise bad_request(f"filter: not JSON ({exc})", "filter") from None
        if not rule:
            raise bad_request("filter: the rule is empty", "filter")
        conditions.append(_Rules(spec).compile(rule))
    return ListQuery(
        page=page,
        condition=sa.and_(sa.true(), *conditions),
        ordering=_ordering(spec, query.get("sort")),
    )


def list_query(spec: ListSpec) -> Callable[..., ListQuery]:
    """FastAPI dependency for a list endpoint of `spec`, documenting every parameter."""

    def dependency(request: Request, **_: str | None) -> ListQuery:
        return parse_list_query(spec, request.query_params)

    fields = ", ".join(f"`{name}`" for name in sorted(spec.fields))
    documented = {
        "page": "A page number within the paginated result set.",
        "page_size": "Number of results to return per page (default 10), or `all`.",
        "sort": f"Comma-separated fields, `-` for descending. Fields: {fields}.",
        "search": "Words every result holds in one of "
        + ", ".join(f"`{name}`" for name in spec.search)
        + " (case-insensitive).",
        "filter": f"A JSON Logic rule. Fields: {fields}.",
        **{name: f"Only results whose `{name}` is exactly this." for name in spec.simple},
    }
    if not spec.search:
        del documented["search"]
    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    parameters += [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, Query(description=description)],
        )
        for name, description in documented.items()
    ]
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=ListQuery
    )
    return dependency
