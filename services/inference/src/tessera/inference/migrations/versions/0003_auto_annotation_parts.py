"""Auto-annotation requests beyond a task: a project's request (`project_id`, no task),
and a request's parts (`auto_annotation_parts`: a task, one of its jobs or some of its
frames each), each with how far its worker got, which moves there from
`auto_annotations` (`tessera.inference.auto_annotation.repository`).

A request recorded before this revision becomes one part, as it was (its task or its
job), and carries on where it stopped. The downgrade puts the progress of one-part
requests back; requests that only this revision can hold (a project's, several jobs',
some frames') lose their rows, and a worker that takes one fails it for lack of its
parameters.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "inference"
_PROGRESS = ("done_through", "pending", "cleaned", "shapes_written")


def upgrade() -> None:
    op.create_table(
        "auto_annotation_parts",
        sa.Column(
            "rq_id",
            sa.Text,
            sa.ForeignKey(f"{S}.auto_annotations.rq_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        # Parts are done in this order.
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        # Task frame numbers, for a part limited to them (None: the task's or the job's).
        sa.Column("frames", ARRAY(sa.BigInteger)),
        # Every frame up to this one (of the part's frames) has its shapes written.
        sa.Column("done_through", sa.BigInteger),
        # The batch being written: {"last": frame, "document": {...}} (None between batches).
        sa.Column("pending", JSONB),
        sa.Column("cleaned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("shapes_written", sa.BigInteger, nullable=False, server_default="0"),
        schema=S,
    )
    op.create_index("auto_annotation_parts_task", "auto_annotation_parts", ["task_id"], schema=S)
    op.execute(f"""
        INSERT INTO {S}.auto_annotation_parts
            (rq_id, position, task_id, job_id, done_through, pending, cleaned, shapes_written)
        SELECT rq_id, 0, task_id, job_id, done_through, pending, cleaned, shapes_written
        FROM {S}.auto_annotations
    """)  # fmt: skip
    op.drop_index("auto_annotations_task", table_name="auto_annotations", schema=S)
    for column in _PROGRESS:
        op.drop_column("auto_annotations", column, schema=S)
    op.add_column("auto_annotations", sa.Column("project_id", sa.BigInteger), schema=S)
    op.alter_column("auto_annotations", "task_id", nullable=True, schema=S)


def downgrade() -> None:
    op.execute(f"""
        DELETE FROM {S}.auto_annotations a
        WHERE a.task_id IS NULL OR EXISTS (
            SELECT FROM {S}.auto_annotation_parts p
            WHERE p.rq_id = a.rq_id AND (p.position > 0 OR p.frames IS NOT NULL)
        )
    """)  # fmt: skip
    op.alter_column("auto_annotations", "task_id", nullable=False, schema=S)
    op.drop_column("auto_annotations", "project_id", schema=S)
    op.add_column("auto_annotations", sa.Column("done_through", sa.BigInteger), schema=S)
    op.add_column("auto_annotations", sa.Column("pending", JSONB), schema=S)
    op.add_column(
        "auto_annotations",
        sa.Column("cleaned", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.add_column(
        "auto_annotations",
        sa.Column("shapes_written", sa.BigInteger, nullable=False, server_default="0"),
        schema=S,
    )
    op.execute(f"""
        UPDATE {S}.auto_annotations a
        SET job_id = p.job_id, done_through = p.done_through, pending = p.pending,
            cleaned = p.cleaned, shapes_written = p.shapes_written
        FROM {S}.auto_annotation_parts p
        WHERE p.rq_id = a.rq_id
    """)  # fmt: skip
    op.create_index("auto_annotations_task", "auto_annotations", ["task_id"], schema=S)
    op.drop_table("auto_annotation_parts", schema=S)
