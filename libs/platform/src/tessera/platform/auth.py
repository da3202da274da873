"""Users, password hashes and personal access tokens, shared by every service.

The `iam` schema holds users and tokens. The annotations service owns it (creates it in
its migrations and manages it through its API); every service verifies bearer tokens
against it with `authenticate`. Tokens are random 256-bit values, so a SHA-256 digest
is a safe lookup key; passwords are hashed with argon2.
"""

from __future__ import annotations

import contextvars
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.platform.db import Database, get_database
from tessera.platform.errors import Problem, Unauthorized, problem_response

IAM_SCHEMA = "iam"
TOKEN_PREFIX = "tsr_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

metadata = sa.MetaData(schema=IAM_SCHEMA)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("email", sa.Text, nullable=False, server_default=""),
    sa.Column("first_name", sa.Text, nullable=False, server_default=""),
    sa.Column("last_name", sa.Text, nullable=False, server_default=""),
    sa.Column("password_hash", sa.Text),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("is_staff", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_superuser", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "date_joined", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("last_login", sa.DateTime(timezone=True)),
)


def username_of(user_id: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """The username of the user `user_id` names, as an expression for filters and sorting."""
    return sa.select(users.c.username).where(users.c.id == user_id).scalar_subquery()


access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "owner_id", sa.BigInteger, sa.ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
    sa.Column(
        "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("expiry_date", sa.DateTime(timezone=True)),
    sa.Column("last_used_date", sa.DateTime(timezone=True)),
    sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("access_tokens_owner", "owner_id"),
)

_hasher = PasswordHasher()
_actor_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("actor_id", default=None)


def current_actor_id() -> int | None:
    """The user id of whoever the work in progress is done for (the request's caller)."""
    return _actor_id.get()


@contextmanager
def actor_scope(user_id: int | None) -> Iterator[None]:
    """Run a block on behalf of `user_id` (None: nobody in particular)."""
    token = _actor_id.set(user_id)
    try:
        yield
    finally:
        _actor_id.reset(token)


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches `password_hash`."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def new_token() -> str:
    """A new personal access token value (shown to its owner once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user behind a verified token."""

    user_id: int
    username: str
    is_superuser: bool
    token_id: int
    read_only: bool


def _bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Unsupported Authorization header: expected 'Bearer <token>'.")
    return value.strip()


async def verify_token(session: AsyncSession, token: str) -> Principal | None:
    """The principal of a usable token (not revoked, not expired, active owner), else None."""
    now = datetime.now(UTC)
    row = (
        await session.execute(
            sa.select(
                access_tokens.c.id,
                access_tokens.c.read_only,
                access_tokens.c.last_used_date,
                users.c.id.label("user_id"),
                users.c.username,
                users.c.is_superuser,
            )
            .join(users, users.c.id == access_tokens.c.owner_id)
            .where(
                access_tokens.c.digest == token_digest(token),
                access_tokens.c.revoked.is_(False),
                sa.or_(access_tokens.c.expiry_date.is_(None), access_tokens.c.expiry_date > now),
                users.c.is_active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    if row.last_used_date is None or row.last_used_date.date() != now.date():
        await session.execute(
            sa.update(access_tokens).where(access_tokens.c.id == row.id).values(last_used_date=now)
        )
    return Principal(row.user_id, row.username, row.is_superuser, row.id, row.read_only)


async def authenticate(database: Database, authorization: str | None, method: str) -> Principal:
    """The verified caller of a request; raises 401 (or 403 for a read-only token's write)."""
    token = _bearer_token(authorization)
    async with database.transaction() as session:
        principal = await verify_token(session, token)
    if principal is None:
        raise Unauthorized("The access token is unknown, revoked or expired.")
    if principal.read_only and method not in SAFE_METHODS:
        raise Problem(403, "This access token is read-only.")
    return principal


class AuthenticationMiddleware:
    """Verifies the caller of every HTTP request except those on `public_paths`.

    Authentication runs before routing, so an unknown path answers 401 to a stranger
    rather than revealing whether it exists. The principal lands in `request.state`,
    and its user id in the actor context variable (`current_actor_id`), which the outbox
    records on every event the request queues.
    """

    def __init__(self, app: ASGIApp, *, public_paths: frozenset[str]) -> None:
        self.app = app
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await authenticate(
                get_database(request), request.headers.get("Authorization"), request.method
            )
        except Problem as problem:
            await problem_response(request, problem)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        with actor_scope(principal.user_id):
            await self.app(scope, receive, send)


_bearer_scheme = HTTPBearer(
    auto_error=False, description="A personal access token: `Authorization: Bearer <token>`."
)


def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> Principal:
    """FastAPI dependency: the caller verified by `AuthenticationMiddleware`."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def ensure_user(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    is_superuser: bool = False,
) -> int:
    """Create the user if absent (its password is set only on creation); returns its id."""
    existing = await session.scalar(sa.select(users.c.id).where(users.c.username == username))
    if existing is not None:
        return int(existing)
    created = await session.scalar(
        sa.insert(users)
        .values(
            username=username,
            email=email,
            password_hash=hash_password(password),
            is_superuser=is_superuser,
            is_staff=is_superuser,
        )
        .returning(users.c.id)
    )
    return int(created)


async def ensure_token(session: AsyncSession, *, owner_id: int, name: str, token: str) -> None:
    """Register a known token value for `owner_id` if it is not registered yet."""
    digest = token_digest(token)
    exists = await session.scalar(
        sa.select(access_tokens.c.id).where(access_tokens.c.digest == digest)
    )
    if exists is None:
        await session.execute(
            sa.insert(access_tokens).values(owner_id=owner_id, name=name, digest=digest)
        )
