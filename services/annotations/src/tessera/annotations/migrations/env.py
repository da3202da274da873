from alembic import context

from tessera.platform.db import run_migrations_online

run_migrations_online(context)
