"""Label and attribute names unique at commit, not per statement.

A request that swaps two labels' (or attributes') names updates one row, then the
other; checked per statement the first update collided with the second row.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "annotations"
LABELS = "labels_project_id_task_id_parent_id_name_key"
ATTRIBUTES = "attribute_specs_label_id_name_key"


def _unique(table: str, name: str, columns: str, deferred: bool) -> None:
    op.execute(f"ALTER TABLE {S}.{table} DROP CONSTRAINT {name}")
    nulls = " NULLS NOT DISTINCT" if table == "labels" else ""
    timing = " DEFERRABLE INITIALLY DEFERRED" if deferred else ""
    op.execute(f"ALTER TABLE {S}.{table} ADD CONSTRAINT {name} UNIQUE{nulls} ({columns}){timing}")


def upgrade() -> None:
    _unique("labels", LABELS, "project_id, task_id, parent_id, name", deferred=True)
    _unique("attribute_specs", ATTRIBUTES, "label_id, name", deferred=True)


def downgrade() -> None:
    _unique("labels", LABELS, "project_id, task_id, parent_id, name", deferred=False)
    _unique("attribute_specs", ATTRIBUTES, "label_id, name", deferred=False)
