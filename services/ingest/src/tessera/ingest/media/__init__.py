"""Tessera's media library: images, archives, video, chunks, manifests and point clouds.

Pure and synchronous, for the ingest service's worker threads: no HTTP, database or object
storage. Every failure caused by bad input raises `MediaError`; bad arguments raise
`ValueError`.
"""

from tessera.ingest.media.archives import ARCHIVE_SUFFIXES, extract_archive, is_archive_name
from tessera.ingest.media.chunks import (
    VIDEO_CHUNK_FPS,
    compress_frame,
    write_image_chunk,
    write_lossless_video_chunk,
    write_video_chunk,
)
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.frames import (
    VIDEO_CHUNK_SIZE,
    SegmentLayout,
    auto_chunk_size,
    frame_numbers,
    frame_step,
    segments,
)
from tessera.ingest.media.images import (
    IMAGE_EXTENSIONS,
    ImageInfo,
    is_image_name,
    load_image,
    pixel_checksum,
    read_image_info,
)
from tessera.ingest.media.manifest import (
    MANIFEST_NAME,
    ImageManifest,
    ImageManifestItem,
    Manifest,
    ManifestKeyFrame,
    VideoManifest,
    check_manifest_against_files,
    check_video_manifest,
    read_manifest,
    write_image_manifest,
    write_video_manifest,
)
from tessera.ingest.media.pointclouds import (
    POINTCLOUD_EXTENSIONS,
    PointCloudInfo,
    is_pointcloud_name,
    read_pointcloud_info,
)
from tessera.ingest.media.sorting import SortingMethod, sort_names
from tessera.ingest.media.video import (
    VIDEO_EXTENSIONS,
    KeyFrame,
    VideoIndex,
    index_video,
    is_video_name,
    read_frames,
)

__all__ = [
    "ARCHIVE_SUFFIXES",
    "IMAGE_EXTENSIONS",
    "MANIFEST_NAME",
    "POINTCLOUD_EXTENSIONS",
    "VIDEO_CHUNK_FPS",
    "VIDEO_CHUNK_SIZE",
    "VIDEO_EXTENSIONS",
    "ImageInfo",
    "ImageManifest",
    "ImageManifestItem",
    "KeyFrame",
    "Manifest",
    "ManifestKeyFrame",
    "MediaError",
    "PointCloudInfo",
    "SegmentLayout",
    "SortingMethod",
    "VideoIndex",
    "VideoManifest",
    "auto_chunk_size",
    "check_manifest_against_files",
    "check_video_manifest",
    "compress_frame",
    "extract_archive",
    "frame_numbers",
    "frame_step",
    "index_video",
    "is_archive_name",
    "is_image_name",
    "is_pointcloud_name",
    "is_video_name",
    "load_image",
    "pixel_checksum",
    "read_frames",
    "read_image_info",
    "read_manifest",
    "read_pointcloud_info",
    "segments",
    "sort_names",
    "write_image_chunk",
    "write_image_manifest",
    "write_lossless_video_chunk",
    "write_video_chunk",
    "write_video_manifest",
]
