"""`GET /api/server/share`: the connected share, a folder at a time, confined to its root."""

from __future__ import annotations

from pathlib import Path

from tessera.ingest.testing import Fleet, png_bytes


async def test_the_share_lists_folders_then_files_and_never_leaves_its_root(
    fleet: Fleet, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    (share / "set" / "inner").mkdir(parents=True)
    (share / "set" / "b.png").write_bytes(png_bytes(1))
    (share / "set" / "a.mp4").write_bytes(b"not really")
    (share / "set" / "notes.txt").write_text("x")
    (share / "top.zip").write_bytes(b"PK")
    (tmp_path / "secret.png").write_bytes(png_bytes(2))
    (share / "set" / "escape.png").symlink_to(tmp_path / "secret.png")
    (share / "set" / "inside.png").symlink_to(share / "set" / "b.png")
    client = fleet.ingest.client

    root = await client.get("/api/server/share")
    assert root.status_code == 200, root.text
    assert root.json() == [
        {"name": "set", "type": "DIR", "mime_type": "DIR"},
        {"name": "top.zip", "type": "REG", "mime_type": "archive"},
    ]
    folder = await client.get("/api/server/share", params={"directory": "/set/"})
    assert [(e["name"], e["type"], e["mime_type"]) for e in folder.json()] == [
        ("inner", "DIR", "DIR"),
        ("a.mp4", "REG", "video"),
        ("b.png", "REG", "image"),
        ("inside.png", "REG", "image"),
        ("notes.txt", "REG", "unknown"),
    ]
    found = await client.get("/api/server/share", params={"directory": "set", "search": "in"})
    assert [e["name"] for e in found.json()] == ["inner", "inside.png"]

    for outside in ("..", "/../", "set/../../", "missing"):
        refused = await client.get("/api/server/share", params={"directory": outside})
        assert refused.status_code == 404, outside
    not_folder = await client.get("/api/server/share", params={"directory": "set/b.png"})
    assert not_folder.status_code == 400
    assert not_folder.json()["errors"][0]["field"] == "query.directory"
    assert (await fleet.ingest.anonymous.get("/api/server/share")).status_code == 401
