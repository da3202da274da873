"""Reading uploads defensively: paths that leave the archive, zip bombs, XML entity
tricks and malformed documents fail with `ImportFailed` before anything is used."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from tessera.export.imports.files import ImportFailed, ImportFiles, Limits, files_of


def archive(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as out:
        for name, data in members.items():
            out.writestr(name, data)
    return buffer.getvalue()


def test_members_by_normalised_path_and_a_single_file_as_one_member(tmp_path: Path) -> None:
    upload = archive({"./annotations\\a.json": b'{"x": 1}', "dir/": b"", "b/c.XML": b"<r/>"})
    with files_of(upload, "upload.zip", tmp_path) as files:
        assert files.names() == ["annotations/a.json", "b/c.XML"]
        assert files.load_json("annotations/a.json") == {"x": 1}
        assert files.matching(".xml") == ["b/c.XML"]
        assert files.matching(".json", under="annotations") == ["annotations/a.json"]
        assert files.parse_xml("b/c.XML").tag == "r"
    with files_of(b"\xef\xbb\xbfline", "C:\\Users\\me\\labels.txt", tmp_path) as files:
        assert files.names() == ["labels.txt"]
        assert files.text("labels.txt") == "line"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../etc/passwd", "outside the archive"),
        ("a/../../b.json", "outside the archive"),
        ("/etc/passwd", "absolute path"),
        ("C:/windows/x.json", "absolute path"),
    ],
)
def test_paths_leaving_the_archive_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        files_of(archive({name: b"{}"}), "upload.zip", tmp_path)


def test_zip_bombs_are_refused_before_inflating(tmp_path: Path) -> None:
    bomb = archive({"a.json": b"0" * (64 << 20)})  # 64 MiB of zeros deflate to ~64 KiB
    with pytest.raises(ImportFailed, match="zip bomb"):
        files_of(bomb, "bomb.zip", tmp_path)
    path = tmp_path / "many.zip"
    path.write_bytes(archive({f"{n}.txt": b"x" for n in range(5)}))
    with pytest.raises(ImportFailed, match="more than 4 members"):
        ImportFiles(path, "many.zip", Limits(members=4))
    with pytest.raises(ImportFailed, match=r"5 bytes, more than 4\."):
        ImportFiles(path, "many.zip", Limits(total_bytes=4))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotations>&lol2;</annotations>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>&x;</annotations>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL, b"<annotations><image>"])
def test_xml_with_entities_or_cut_short_is_refused(tmp_path: Path, document: bytes) -> None:
    with files_of(document, "annotations.xml", tmp_path) as files:
        with pytest.raises(
            ImportFailed, match=re.escape("annotations.xml is not XML Tessera reads")
        ):
            files.parse_xml("annotations.xml")
        with pytest.raises(
            ImportFailed, match=re.escape("annotations.xml is not XML Tessera reads")
        ):
            list(files.iterparse_xml("annotations.xml"))


def test_malformed_json_and_missing_members_name_the_file(tmp_path: Path) -> None:
    with files_of(archive({"a.json": b'{"images": [1,'}), "upload.zip", tmp_path) as files:
        with pytest.raises(ImportFailed, match=re.escape("a.json is not valid JSON")):
            files.load_json("a.json")
        with pytest.raises(ImportFailed, match=re.escape("no file 'b.json'")):
            files.read("b.json")
    with (
        files_of(b"\xff\xfe\x00", "labels.txt", tmp_path) as files,
        pytest.raises(ImportFailed, match=re.escape("labels.txt is not UTF-8")),
    ):
        files.text("labels.txt")
