"""Top-level shapes of a job by source and score, for the review list.

`GET /api/{jobs|tasks}/{id}/annotations/shapes?source=auto&sort=score` pages through a
job's shapes of some sources from the least certain; with this index a page of one
source in one job is read off the index in order (forwards for `score`, backwards for
`-score`, ties by id) instead of sorting every shape of the job. Skeleton elements
(`parent_id` set) are never listed on their own, so the index leaves them out.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "annotations"


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX shapes_job_source_score ON {S}.shapes (job_id, source, score, id) "
        "WHERE parent_id IS NULL"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX {S}.shapes_job_source_score")
