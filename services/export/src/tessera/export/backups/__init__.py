"""Task and project backups in CVAT's backup format, and their restore.

`POST /api/{tasks|projects}/{id}/backup/export` (`?lightweight=&location=&filename=`) asks
for a backup: an export request of a kind of its own (`BACKUP_FORMAT`, operation type
`export:backup`), written by the export worker (`tessera.export.backups.writer`) and
downloaded at its `result_url`, `GET /api/{tasks|projects}/{id}/backup/download?rq_id=`.
`POST /api/{tasks|projects}/backup/` takes a backup in CVAT's upload protocol and restores
it into a new task or project (`import:backup`, its `result_id`;
`tessera.export.backups.restorer`). These are the endpoints cvat-sdk 2.80's
`download_backup` and `create_from_backup` call, and cvat-cli's `task backup` and
`task create-from-backup`.

The layout is CVAT's, as `cvat/apps/engine/backup.py` (`_TaskBackupBase`, `TaskExporter`,
`ProjectExporter`, backup format `Version.V1 = "1.0"`) writes it and `TaskImporter` /
`ProjectImporter` read it back. A task backup is a zip archive of::

    data/<file>            the media the task was made from, under the names it was made
                           with: each image (relative path, e.g. `folder/img1.jpg`), or
                           the one video file; stored as they are
    data/<dir>/related_images/<file with its last "." made "_">/<image>
                           the context images of the image `<dir>/<file>` as they were
                           given (`folder/related_images/img1_jpg/left.png`): CVAT's
                           backup holds the task's upload folder, where they lie so, and
                           its task creation finds them so (`detect_related_images` in
                           `utils/dataset_manifest/utils.py`)
    data/manifest.jsonl    the media's manifest (`utils/dataset_manifest/core.py`):
                           `{"version":"1.1"}`, `{"type":"images"}`, then one line per
                           image `{"name","extension","width","height"}`, with
                           `"meta":{"related_images":[<path>, ...]}` for an image with
                           context images (their paths in `data/`); or for video
                           `{"type":"video"}`, `{"properties":{"name","resolution",
                           "length"}}`, then `{"number","pts","checksum"}` per key frame.
                           Never `index.json` (CVAT leaves it out, and rebuilds it).
    task.json              the task (below)
    annotations.json       a JSON list, one element per job in the order of `task.json`'s
                           `jobs`: the job's annotations as `GET /api/jobs/{id}/annotations`
                           answers them (`LabeledData`: `version`, `tags`, `shapes`,
                           `tracks`), with ids and scores dropped, labels by name and
                           attributes by name (below)

A project backup is `project.json` (`name`, `bug_tracker`, `status`, `labels`, `version`)
and each of its tasks with media, in id order, as `task_<i>/` (i = 0, 1, ...) holding a
task backup's members; the tasks' `task.json` carry the project's labels.

`task.json` (CVAT's `TaskReadSerializer` and `DataSerializer`, cut down to the keys its
`_prepare_*_meta` keep)::

    {"name", "bug_tracker", "status", "subset",
     "labels": [{"name", "color", "type", "svg", "sublabels": [<label>, ...],
                 "attributes": [{"name", "mutable", "input_type", "default_value",
                                 "values": [...]}]}],
     "version": "1.0",
     "data": {"chunk_size", "image_quality", "start_frame", "stop_frame",
              "frame_filter" (left out when empty), "storage_method" ("cache" |
              "file_system"), "sorting_method", "chunk_type" (the compressed chunks'),
              "deleted_frames" (task frame numbers), "storage": "local"},
     "jobs": [{"status", "type", "start_frame", "stop_frame",
               "frames" (only for a job of chosen frames)}]}

A skeleton's `svg` names its points by `data-label-name="<sublabel name>"` (the stored
`data-label-id` replaced, as CVAT's `_prepare_label_meta` does). Jobs are in id order
(CVAT sorts the segments by their job's id). An image task made from a frame range or
step (`start_frame`, `stop_frame`, `frame_filter`) keeps only its frames, so its `data`
leaves those three keys out, as CVAT's does when it filters the manifest to the task's
frames; a video task keeps them (the whole video is in the backup).

In `annotations.json` each tag, shape, track, track shape and skeleton element keeps only
CVAT's `_prepare_annotations` keys (`label`, `type`, `occluded`, `outside`, `z_order`,
`points`, `rotation`, `frame`, `group`, `source`, `attributes`, `shapes`, `elements`);
`label_id` becomes `label` (the label's or sublabel's name) and each attribute's `spec_id`
becomes `name`: `{"value": "red", "name": "color"}`.

Tessera writes the media whatever `lightweight` says (CVAT leaves it out only for tasks
whose media is in a cloud storage): its backups restore without the storage. It has no
annotation guides, so writes no `annotation_guide.md` and `assets/`.

A restore reads the same layout, as CVAT's `TaskImporter` does: a backup made by CVAT 2.x
(a `data/index.json` is left out; a missing job `type` is `annotation`) or by Tessera.
Context images come back with the files (ingest finds them by the same layout), and
`deleted_frames` is set on the new task once it has media, as CVAT's `_import_task`
does. What Tessera does not have is left out, and the finished request's message names
each thing: ground truth and consensus replica jobs (with their annotations), an
annotation guide. A lightweight backup (`storage` other than `local`) and one whose jobs
are made of chosen files (`custom_segments`, or a `validation_layout`: a pool of ground
truth frames mixed into the annotation jobs) are refused.
"""

BACKUP_FORMAT = "CVAT backup 1.0"
"""The `format` of a backup's export request (no exporter has this name)."""
BACKUP_VERSION = "1.0"
