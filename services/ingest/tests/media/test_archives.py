import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tessera.ingest.media import MediaError, extract_archive, is_archive_name

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "tar": bytes,
    "tar.gz": gzip.compress,
    "tgz": gzip.compress,
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
}


def extract(archive: Path, dest: Path) -> list[str]:
    return extract_archive(archive, dest, max_total_bytes=10_000_000, max_files=100, max_ratio=100)


def random_bytes(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def make_zip(path: Path, entries: dict[str, bytes], *, deflate: bool = False) -> Path:
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A tar, compressed as its name says."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    suffix = next(s for s in COMPRESSORS if path.name.endswith(f".{s}"))
    path.write_bytes(COMPRESSORS[suffix](buffer.getvalue()))
    return path


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.zip", True),
        ("A.ZIP", True),
        ("a.tar", True),
        ("a.tar.gz", True),
        ("a.tgz", True),
        ("a.tar.bz2", True),
        ("a.tar.xz", True),
        ("a.gz", False),
        ("a.rar", False),
        ("a.7z", False),
        ("zip", False),
    ],
)
def test_is_archive_name(name: str, expected: bool) -> None:
    assert is_archive_name(name) is expected


def test_zip_extracts_files_in_archive_order_and_skips_macos_junk(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "photos.zip",
        {
            "set/b.jpg": b"bbb",
            "set/": b"",
            "a.png": b"aa",
            "__MACOSX/set/._b.jpg": b"junk",
            "set/.DS_Store": b"junk",
            "./set/sub/c.jpg": b"c",
        },
        deflate=True,
    )
    dest = tmp_path / "out"

    files = extract(archive, dest)

    assert files == ["set/b.jpg", "a.png", "set/sub/c.jpg"]
    assert tree(dest) == ["a.png", "set", "set/b.jpg", "set/sub", "set/sub/c.jpg"]
    assert (dest / "set/b.jpg").read_bytes() == b"bbb"
    assert (dest / "set/sub/c.jpg").read_bytes() == b"c"


@pytest.mark.parametrize("suffix", ["tar", "tar.gz", "tgz", "tar.bz2", "tar.xz"])
def test_tar_variants(tmp_path: Path, suffix: str) -> None:
    directory = tarfile.TarInfo("frames")
    directory.type = tarfile.DIRTYPE
    archive = make_tar(
        tmp_path / f"frames.{suffix}",
        [(directory, None), regular("frames/2.jpg", b"two"), regular("1.jpg", b"one")],
    )

    files = extract(archive, tmp_path / "out")

    assert files == ["frames/2.jpg", "1.jpg"]
    assert (tmp_path / "out/frames/2.jpg").read_bytes() == b"two"
    assert (tmp_path / "out/1.jpg").read_bytes() == b"one"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("../evil.txt", "'..' components are not allowed"),
        ("ok/../../evil.txt", "'..' components are not allowed"),
        ("..\\evil.txt", "'..' components are not allowed"),
        ("/etc/evil.txt", "absolute paths are not allowed"),
        ("C:\\evil.txt", "absolute paths are not allowed"),
    ],
)
def test_zip_slip_is_refused(tmp_path: Path, entry: str, reason: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {"fine.jpg": b"x", entry: b"evil"})
    dest = tmp_path / "out"

    with pytest.raises(MediaError) as caught:
        extract(archive, dest)

    assert caught.value.file == "slip.zip"
    assert caught.value.reason == f"entry {entry!r}: {reason}"
    assert not dest.exists()
    assert tree(tmp_path) == ["slip.zip"]


def test_tar_absolute_and_parent_paths_are_refused(tmp_path: Path) -> None:
    for name in ("/tmp/evil.txt", "../evil.txt"):
        archive = make_tar(tmp_path / "slip.tar", [regular(name, b"evil")])

        with pytest.raises(MediaError, match=r"^slip\.tar: entry '[^']*evil\.txt'"):
            extract(archive, tmp_path / "out")

        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("member", "kind"),
    [
        (special("link.jpg", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("hard.jpg", tarfile.LNKTYPE, "a.jpg"), "hard link"),
        (special("dev", tarfile.CHRTYPE), "device"),
        (special("fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_tar_links_and_devices_are_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, None], kind: str
) -> None:
    archive = make_tar(tmp_path / "links.tar.gz", [regular("a.jpg", b"a"), member])
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    with pytest.raises(MediaError) as caught:
        extract(archive, dest)

    assert caught.value.reason == f"entry {member[0].name!r}: {kind} entries are not allowed"
    # The file extracted before the link is gone; what was there before stays.
    assert tree(dest) == ["keep.txt"]


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.jpg")
    link.create_system = 3
    link.external_attr = (0o120777) << 16
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.jpg", b"a")
        zf.writestr(link, "/etc/passwd")

    with pytest.raises(MediaError, match=r"entry 'link\.jpg': symbolic link entries"):
        extract(archive, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_highly_compressible_entry_is_a_bomb(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "bomb.zip", {"a.jpg": b"a", "zeros.bin": bytes(5_000_000)}, deflate=True
    )
    assert archive.stat().st_size < 10_000

    with pytest.raises(MediaError) as caught:
        extract(archive, tmp_path / "out")

    assert caught.value.file == "bomb.zip"
    assert caught.value.reason == (
        "entry 'zeros.bin': declared sizes add up to more than 100 times the archive's own size"
    )
    assert not (tmp_path / "out").exists()


def test_declared_total_over_the_limit_is_refused_before_writing(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "big.zip", {"a.bin": random_bytes(600), "b.bin": b"x" * 600})

    with pytest.raises(
        MediaError, match=r"entry 'b\.bin': declared sizes add up to more than 1000"
    ):
        extract_archive(archive, tmp_path / "out", max_total_bytes=1000, max_files=10, max_ratio=10)

    assert not (tmp_path / "out").exists()


def test_zip_whose_header_lies_about_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", {"zeros.bin": bytes(2_000_000)}, deflate=True)
    data = bytearray(archive.read_bytes())
    # Claim 100 bytes in both the local header and the central directory.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 100)
    struct.pack_into("<I", data, central + 24, 100)
    archive.write_bytes(bytes(data))
    dest = tmp_path / "out"

    with pytest.raises(MediaError) as caught:
        extract_archive(archive, dest, max_total_bytes=10_000, max_files=10, max_ratio=1000)

    assert caught.value.file == "liar.zip"
    assert caught.value.reason.startswith("entry 'zeros.bin': corrupt or unsupported data (")
    assert not dest.exists()


def test_tar_gz_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "bomb.tar.gz",
        [regular("a.jpg", random_bytes(1000)), regular("zeros.bin", bytes(5_000_000))],
    )
    dest = tmp_path / "out"

    with pytest.raises(MediaError, match=r"^bomb\.tar\.gz: entry 'zeros\.bin': .* 100 times"):
        extract(archive, dest)

    assert not dest.exists()


def test_tar_total_limit_rolls_back_earlier_files(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "many.tar",
        [regular(f"{i}.bin", random_bytes(400, seed=i)) for i in range(3)],
    )
    dest = tmp_path / "out"

    with pytest.raises(MediaError, match=r"entry '2\.bin': declared sizes add up to more than"):
        extract_archive(archive, dest, max_total_bytes=1000, max_files=10, max_ratio=10)

    assert not dest.exists()


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_too_many_files(tmp_path: Path, kind: str) -> None:
    entries = {f"{i}.jpg": b"x" for i in range(4)}
    if kind == "zip":
        archive = make_zip(tmp_path / "many.zip", entries)
    else:
        archive = make_tar(tmp_path / "many.tar", [regular(n, d) for n, d in entries.items()])

    with pytest.raises(MediaError, match=r"entry '3\.jpg': the archive holds more than 3 files"):
        extract_archive(archive, tmp_path / "out", max_total_bytes=10**6, max_files=3, max_ratio=10)

    assert extract_archive(
        archive, tmp_path / "ok", max_total_bytes=10**6, max_files=4, max_ratio=10
    ) == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.jpg", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.jpg", b"2")

    with pytest.raises(MediaError, match=r"entry 'a\.jpg': duplicate entry"):
        extract(archive, tmp_path / "out")


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"new.jpg": b"new", "sub/a.jpg": b"theirs"})
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub/a.jpg").write_bytes(b"mine")

    with pytest.raises(MediaError, match=r"entry 'sub/a\.jpg': a file of that name already"):
        extract(archive, dest)

    assert (dest / "sub/a.jpg").read_bytes() == b"mine"
    assert tree(dest) == ["sub", "sub/a.jpg"]


def test_file_where_a_directory_is_needed(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "clash.zip", {"a": b"file", "a/b.jpg": b"x"})

    with pytest.raises(
        MediaError, match=r"entry 'a/b\.jpg': a file stands where a directory is needed"
    ):
        extract(archive, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_symlinked_directory_in_destination_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    archive = make_zip(tmp_path / "a.zip", {"sub/x.jpg": b"x"})

    with pytest.raises(MediaError, match="the path leaves the destination directory"):
        extract(archive, dest)

    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["junk.zip", "junk.tar.gz", "junk.tar"])
def test_garbage_is_a_corrupt_archive(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(random_bytes(5000))

    with pytest.raises(MediaError, match=rf"^{name}: corrupt or unsupported archive"):
        extract(path, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_truncated_tar_gz_leaves_nothing(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "cut.tar.gz",
        [regular("a.bin", random_bytes(20_000)), regular("b.bin", random_bytes(20_000, 1))],
    )
    archive.write_bytes(archive.read_bytes()[:30_000])

    with pytest.raises(
        MediaError, match=r"^cut\.tar\.gz: entry 'b\.bin': corrupt or unsupported data"
    ):
        extract(archive, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_unsupported_or_missing(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^a\.rar: unsupported archive type$"):
        extract(tmp_path / "a.rar", tmp_path / "out")
    with pytest.raises(MediaError, match=r"^b\.zip: file not found$"):
        extract(tmp_path / "b.zip", tmp_path / "out")
