"""The coarse kind of a file by its name, as CVAT's file listings report it."""

from tessera.ingest.media.archives import is_archive_name
from tessera.ingest.media.images import is_image_name
from tessera.ingest.media.pointclouds import is_pointcloud_name
from tessera.ingest.media.video import is_video_name


def media_kind(name: str) -> str:
    """`image`, `video`, `archive`, `pointcloud` or `unknown` (CVAT's `mime_type` field)."""
    if is_image_name(name):
        return "image"
    if is_video_name(name):
        return "video"
    if is_archive_name(name):
        return "archive"
    if is_pointcloud_name(name):
        return "pointcloud"
    return "unknown"
