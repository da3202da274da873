"""The JSON members of a backup (`tessera.export.backups`): `task.json`, `project.json` and
each job's element of `annotations.json`, made from a snapshot's header, the media's meta
and the objects of the annotations service, as CVAT's `backup.py` writes them."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from tessera.export.backups import BACKUP_VERSION
from tessera.platform.contracts.annotations import SnapshotJob, SnapshotLabel, SnapshotTask
from tessera.platform.contracts.ingest import DataMeta, MediaFiles

Obj = dict[str, Any]

ANNOTATION_KEYS = frozenset(
    {
        "label", "type", "occluded", "outside", "z_order", "points", "rotation", "frame",
        "group", "source", "attributes", "shapes", "elements",
    }
)  # fmt: skip
"""What CVAT's `_prepare_annotations` keeps of an object (besides `label_id`, renamed)."""
_LABEL_REF = re.compile(r'data-label-id="([0-9]+)"')


class LabelNames:
    """Names of the labels (sublabels too) and of their attribute specs, by id."""

    def __init__(self, labels: Iterable[SnapshotLabel]) -> None:
        self.labels: dict[int, str] = {}
        self.specs: dict[int, dict[int, str]] = {}
        self._add(labels)

    def _add(self, labels: Iterable[SnapshotLabel]) -> None:
        for label in labels:
            self.labels[label.id] = label.name
            self.specs[label.id] = {spec.id: spec.name for spec in label.attributes}
            self._add(label.sublabels)


def label_meta(labels: Sequence[SnapshotLabel]) -> list[Obj]:
    """The labels as `task.json` and `project.json` hold them: without ids, a skeleton's
    points named by their sublabel's name in its `svg`."""
    return [_label(label) for label in labels]


def _label(label: SnapshotLabel) -> Obj:
    names = {str(sub.id): sub.name for sub in label.sublabels}
    svg = _LABEL_REF.sub(
        lambda ref: f'data-label-name="{names.get(ref.group(1), ref.group(1))}"', label.svg
    )
    return {
        "name": label.name,
        "color": label.color,
        "attributes": [
            {
                "name": spec.name,
                "mutable": spec.mutable,
                "input_type": spec.input_type,
                "default_value": spec.default_value,
                "values": list(spec.values),
            }
            for spec in label.attributes
        ],
        "type": label.type,
        "svg": svg,
        "sublabels": [_label(sub) for sub in label.sublabels],
    }


def task_meta(
    task: SnapshotTask,
    labels: Sequence[SnapshotLabel],
    jobs: Sequence[SnapshotJob],
    meta: DataMeta,
    media: MediaFiles,
) -> Obj:
    """`task.json` of a task (its jobs in the order given)."""
    data: Obj = {
        "chunk_size": meta.chunk_size,
        "image_quality": meta.image_quality,
        "start_frame": meta.start_frame,
        "stop_frame": meta.stop_frame,
        "frame_filter": meta.frame_filter,
        "storage_method": "cache" if media.use_cache else "file_system",
        "sorting_method": media.sorting_method,
        "chunk_type": media.compressed_chunk_type,
        "deleted_frames": list(meta.deleted_frames),
        "storage": "local",
    }
    if media.media_type == "image" and _range_taken(meta):
        for key in ("start_frame", "stop_frame", "frame_filter"):
            del data[key]
    elif not meta.frame_filter:
        del data["frame_filter"]
    return {
        "name": task.name,
        "bug_tracker": task.bug_tracker,
        "status": task.status,
        "subset": task.subset,
        "labels": label_meta(labels),
        "version": BACKUP_VERSION,
        "data": data,
        "jobs": [
            {
                "status": job.status,
                "type": job.type,
                "start_frame": job.start_frame,
                "stop_frame": job.stop_frame,
                **({"frames": list(job.frames)} if job.frames is not None else {}),
            }
            for job in jobs
        ],
    }


def _range_taken(meta: DataMeta) -> bool:
    """Whether an image task was made from a part of its files (a range or a step): its
    frames are then all the backup holds."""
    return bool(meta.frame_filter) or meta.start_frame != 0 or meta.stop_frame != meta.size - 1


def project_meta(name: str, bug_tracker: str, status: str, labels: Sequence[SnapshotLabel]) -> Obj:
    """`project.json` of a project."""
    return {
        "name": name,
        "bug_tracker": bug_tracker,
        "status": status,
        "labels": label_meta(labels),
        "version": BACKUP_VERSION,
    }


def annotation(obj: Mapping[str, Any], names: LabelNames, parent: int | None = None) -> Obj:
    """A tag, shape or track (an object of a snapshot, as the annotations GET answers it)
    as `annotations.json` holds it; `parent` is the label of the track a track shape is
    of (its attributes are that label's)."""
    label_id = obj.get("label_id", parent)
    specs = names.specs.get(label_id, {}) if label_id is not None else {}
    out: Obj = {key: value for key, value in obj.items() if key in ANNOTATION_KEYS}
    if "attributes" in out:
        out["attributes"] = [
            {"value": attribute["value"], "name": specs[attribute["spec_id"]]}
            for attribute in out["attributes"]
            if attribute["spec_id"] in specs
        ]
    if "shapes" in out:
        out["shapes"] = [annotation(shape, names, label_id) for shape in out["shapes"]]
    if "elements" in out:
        out["elements"] = [annotation(element, names) for element in out["elements"]]
    if "label_id" in obj:
        out["label"] = names.labels[obj["label_id"]]
    return out


# -- restoring ---------------------------------------------------------------------------


class BackupInvalid(ValueError):
    """A backup that cannot be restored: what it lacks or holds that Tessera does not take."""


_LABEL_KEYS = ("name", "color", "type", "attributes", "svg")
_STAGES: dict[str, Obj] = {
    "validation": {"stage": "validation"},
    "completed": {"stage": "acceptance", "state": "completed"},
}


def check_version(meta: Mapping[str, Any], member: str) -> None:
    """BackupInvalid unless `meta` (`task.json` or `project.json`) is of version 1.0."""
    if meta.get("version") != BACKUP_VERSION:
        raise BackupInvalid(f"{member}: backup version {meta.get('version')!r} is not supported.")


def labels_to_create(labels: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """A backup's labels as the body of a task's or project's creation (a skeleton's
    points still named in its `svg`, which the annotations service resolves)."""
    created = []
    for label in labels:
        body: Obj = {key: label[key] for key in _LABEL_KEYS if key in label}
        if label.get("sublabels"):
            body["sublabels"] = labels_to_create(label["sublabels"])
        created.append(body)
    return created


def task_to_create(task: Mapping[str, Any], owner_id: int, project_id: int | None) -> Obj:
    """The body of `POST /api/tasks` that makes a backed-up task again: its fields, its
    labels (none in a project), and the segment size and overlap of its annotation jobs
    (CVAT's `_calculate_segment_size`)."""
    jobs = annotation_jobs(task)
    if not jobs:
        raise BackupInvalid("task.json lists no annotation job.")
    segment_size = jobs[0]["stop_frame"] - jobs[0]["start_frame"] + 1
    overlap = 0 if len(jobs) == 1 else jobs[0]["stop_frame"] - jobs[1]["start_frame"] + 1
    body: Obj = {
        "name": task["name"],
        "bug_tracker": task.get("bug_tracker", ""),
        "subset": task.get("subset", ""),
        "owner_id": owner_id,
        "segment_size": segment_size,
        "overlap": overlap,
    }
    if project_id is not None:
        body["project_id"] = project_id
    else:
        body["labels"] = labels_to_create(task.get("labels", []))
    return body


def project_to_create(project: Mapping[str, Any], owner_id: int) -> Obj:
    """The body of `POST /api/projects` that makes a backed-up project again."""
    return {
        "name": project["name"],
        "bug_tracker": project.get("bug_tracker", ""),
        "owner_id": owner_id,
        "labels": labels_to_create(project.get("labels", [])),
    }


def annotation_jobs(task: Mapping[str, Any]) -> list[Obj]:
    """The annotation jobs of `task.json`, in its order (a backup made before CVAT had job
    types has none: all its jobs are annotation jobs)."""
    return [job for job in task.get("jobs", []) if job.get("type", "annotation") == "annotation"]


def job_annotations(task: Mapping[str, Any], annotations: Sequence[Any]) -> list[Any]:
    """The elements of `annotations.json` of the annotation jobs, in `task.json`'s order
    (the two lists go in step, other kinds of jobs included)."""
    jobs = task.get("jobs", [])
    if len(jobs) != len(annotations):
        raise BackupInvalid(
            f"annotations.json holds {len(annotations)} jobs, task.json lists {len(jobs)}."
        )
    return [
        element
        for job, element in zip(jobs, annotations, strict=True)
        if job.get("type", "annotation") == "annotation"
    ]


def deleted_frames(data: Mapping[str, Any]) -> list[int]:
    """A backup's deleted frames (`data.deleted_frames`: task frame numbers, none in a
    backup made before CVAT had them), which the restored task takes once it has media."""
    found = data.get("deleted_frames") or []
    if not isinstance(found, list) or not all(
        isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0 for frame in found
    ):
        raise BackupInvalid("task.json: data.deleted_frames must be a list of frame numbers.")
    return sorted(set(found))


_OTHER_JOBS = {"ground_truth": "ground truth", "consensus_replica": "consensus replica"}


def left_out(
    task: Mapping[str, Any], annotations: Sequence[Any], members: Collection[str], folder: str
) -> list[str]:
    """What a task's part of a backup (`folder`: `""` or `task_<i>/`) holds that Tessera
    does not restore, one phrase each: its jobs of other kinds than annotation (CVAT's
    ground truth and consensus replica jobs, which Tessera does not have; their elements
    of `annotations.json` go with them), and an annotation guide (`annotation_guide.md`
    and its `assets/`). `annotations` is `annotations.json`, in step with `task.json`'s
    jobs (`job_annotations` checks it)."""
    said = []
    for job, element in zip(task.get("jobs", []), annotations, strict=False):
        kind = job.get("type", "annotation")
        if kind == "annotation":
            continue
        found = element if isinstance(element, Mapping) else {}
        count = sum(len(found.get(key) or []) for key in ("tags", "shapes", "tracks"))
        said.append(
            f"{folder}the {_OTHER_JOBS.get(kind, repr(kind))} job of frames {_frames_of(job)} "
            f"with {_counted(count, 'annotation')}"
        )
    guide = annotation_guide(members, folder)
    if guide:
        said.append(guide)
    return said


def annotation_guide(members: Collection[str], folder: str) -> str | None:
    """The annotation guide at `folder` of a backup's `members`, as a phrase (None without
    one): Tessera has no annotation guides."""
    if f"{folder}annotation_guide.md" not in members:
        return None
    assets = sum(1 for name in members if name.startswith(f"{folder}assets/"))
    return f"the annotation guide {folder}annotation_guide.md with {_counted(assets, 'asset')}"


def _frames_of(job: Mapping[str, Any]) -> str:
    frames = job.get("frames")
    if not frames:
        return f"{job.get('start_frame')}-{job.get('stop_frame')}"
    shown = ", ".join(map(str, frames[:10]))
    return shown + (f", ... ({len(frames)} frames)" if len(frames) > 10 else "")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def data_options(data: Mapping[str, Any]) -> dict[str, str]:
    """A backup's `data` as the fields of the media's creation (CVAT's restore: the
    compressed chunk type says `use_zip_chunks`, the storage method `use_cache`)."""
    if data.get("storage", "local") != "local":
        raise BackupInvalid(
            "A lightweight backup (the media left in its cloud storage) cannot be restored; "
            "back the task up with lightweight=false."
        )
    if data.get("custom_segments") or data.get("validation_layout"):
        raise BackupInvalid(
            "The backup's jobs are made of chosen files (custom segments or a validation "
            "pool), which Tessera's tasks do not have."
        )
    options = {
        "image_quality": str(data.get("image_quality", 70)),
        "use_zip_chunks": str(data.get("chunk_type", "imageset") == "imageset").lower(),
        "use_cache": str(data.get("storage_method") == "cache").lower(),
        "sorting_method": str(data.get("sorting_method", "lexicographical")),
        "start_frame": str(data.get("start_frame", 0)),
        "stop_frame": str(data.get("stop_frame", 0)),
        "frame_filter": str(data.get("frame_filter", "")),
    }
    if data.get("chunk_size"):
        options["chunk_size"] = str(data["chunk_size"])
    return options


def job_change(status: str) -> Obj | None:
    """The change of a new job (in `annotation`) that gives it a backed-up job's status."""
    return _STAGES.get(status)


class LabelIds:
    """Ids of a task's labels and attribute specs by name: top-level labels by name, a
    skeleton's points by name within it (as CVAT's restore maps them)."""

    def __init__(self, labels: Iterable[SnapshotLabel]) -> None:
        self.top = {label.name: label for label in labels}

    def label(self, name: object, parent: SnapshotLabel | None) -> SnapshotLabel:
        """The label (a sublabel of `parent`) named `name`; BackupInvalid if none is."""
        among = {sub.name: sub for sub in parent.sublabels} if parent else self.top
        found = among.get(name) if isinstance(name, str) else None
        if found is None:
            where = f" of {parent.name!r}" if parent else ""
            raise BackupInvalid(f"annotations.json names a label {name!r}{where} the task lacks.")
        return found


def job_document(element: Mapping[str, Any], ids: LabelIds) -> Obj:
    """A job's element of `annotations.json` as CVAT's LabeledData for its import: labels
    and attributes by id."""
    return {
        kind: [_with_ids(obj, ids, None) for obj in element.get(kind, [])]
        for kind in ("tags", "shapes", "tracks")
    }


def _with_ids(
    obj: Mapping[str, Any],
    ids: LabelIds,
    parent: SnapshotLabel | None,
    label: SnapshotLabel | None = None,
) -> Obj:
    """An object with its label (unless it is a track shape, of its track's `label`) and
    attributes by id; elements are labelled within the object's label."""
    if label is None:
        label = ids.label(obj.get("label"), parent)
    specs = {spec.name: spec.id for spec in label.attributes}
    out: Obj = {key: value for key, value in obj.items() if key in ANNOTATION_KEYS}
    out.pop("label", None)
    if "label" in obj:
        out["label_id"] = label.id
    attributes = []
    for attribute in obj.get("attributes", []):
        if attribute.get("name") not in specs:
            raise BackupInvalid(
                f"annotations.json names an attribute {attribute.get('name')!r} that label "
                f"{label.name!r} lacks."
            )
        attributes.append({"spec_id": specs[attribute["name"]], "value": attribute["value"]})
    out["attributes"] = attributes
    if "shapes" in obj:
        out["shapes"] = [_with_ids(shape, ids, None, label) for shape in obj["shapes"]]
    if "elements" in obj:
        out["elements"] = [_with_ids(element, ids, label) for element in obj["elements"]]
    return out
