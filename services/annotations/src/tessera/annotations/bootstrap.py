"""The administrator that exists from the first start, from settings."""

from tessera.platform.auth import ensure_token, ensure_user
from tessera.platform.service import Platform


async def ensure_bootstrap_admin(platform: Platform) -> None:
    """Create the bootstrap admin (and register its token, if one is configured)."""
    settings = platform.settings
    async with platform.database.transaction() as session:
        admin_id = await ensure_user(
            session,
            username=settings.bootstrap_admin_username,
            email=settings.bootstrap_admin_email,
            password=settings.bootstrap_admin_password.get_secret_value(),
            is_superuser=True,
        )
        if settings.bootstrap_admin_token is not None:
            await ensure_token(
                session,
                owner_id=admin_id,
                name="bootstrap",
                token=settings.bootstrap_admin_token.get_secret_value(),
            )
