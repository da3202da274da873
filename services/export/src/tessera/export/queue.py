"""The export work queue, shared by every export replica (`tessera.platform.workqueue`).

An export request commits its request row, its export row and an `export.requested`
message in one transaction; each replica's `WorkerPool` hands the exports to
`ExportRunner`. An export a stopped or dead replica left is redone by another (its
multipart upload was aborted, or is removed by the bucket's lifecycle rule), and fails
after `EXPORTS.max_deliveries` tries.
"""

from tessera.platform.workqueue import WorkQueue

EXPORTS = WorkQueue(stream="EXPORT", subject="export.requested", durable="export-dataset")
