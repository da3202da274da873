"""The auto-annotation work queue, shared by every inference replica
(`tessera.platform.workqueue`).

`POST /api/lambda/requests` commits the request's row, its `auto_annotations` row and
parts, and an `inference.annotate.requested` message in one transaction; each replica's
`WorkerPool` hands the requests to `AutoAnnotationRunner`. A request that a stopped or
dead replica left is resumed by another from the last batch it wrote (see
`tessera.inference.auto_annotation.runner`), and fails after `max_deliveries` tries.
The INFERENCE stream (limits retention) also carries `inference.requests.updated`; the
queue's durable consumer takes only its own subject.
"""

from __future__ import annotations

import dataclasses

from tessera.platform.workqueue import WorkQueue

AUTO_ANNOTATION = WorkQueue(
    stream="INFERENCE", subject="inference.annotate.requested", durable="inference-annotate"
)


def auto_annotation_queue(*, max_deliveries: int, retry_delay_s: float) -> WorkQueue:
    """The queue with a replica's timing (its settings' tries and the wait between them)."""
    return dataclasses.replace(
        AUTO_ANNOTATION, max_deliveries=max_deliveries, retry_delay_s=retry_delay_s
    )
