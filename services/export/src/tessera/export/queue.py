"""The export and import work queues, shared by every replica (`tessera.platform.workqueue`).

An export request commits its request row, its export row and an `export.requested`
message in one transaction; each replica's `WorkerPool` hands the exports to
`ExportRunner`. An export a stopped or dead replica left is redone by another (its
multipart upload was aborted, or is removed by the bucket's lifecycle rule), and fails
after `EXPORTS.max_deliveries` tries.

The EXPORT stream (limits retention, not a work-queue stream) also carries the end of
each export, `export.finished` (`tessera.export.events`): the queue's durable consumer
takes only `export.requested`, and the consumers of `export.finished` only that subject.
"""

from tessera.platform.workqueue import WorkQueue

EXPORTS = WorkQueue(stream="EXPORT", subject="export.requested", durable="export-dataset")
IMPORTS = WorkQueue(
    stream="EXPORT", subject="export.import.requested", durable="import-annotations"
)
"""Annotation imports: the request row and an `export.import.requested` message are
committed with the Upload-Finish; `ImportRunner` does them."""
RESTORES = WorkQueue(stream="EXPORT", subject="export.restore.requested", durable="restore-backups")
"""Backup restores: the request row and an `export.restore.requested` message are committed
with the Upload-Finish; `RestoreRunner` does them."""
DATASETS = WorkQueue(stream="EXPORT", subject="export.dataset.requested", durable="import-datasets")
"""Dataset imports into projects: the request row and an `export.dataset.requested` message
are committed with the Upload-Finish; `DatasetImportRunner` does them."""
