"""The JSON text GET streams for tags and shapes: the text stored at write time holds
the same values as PostgreSQL's `json_build_object` of the typed columns, and the text
PostgreSQL concatenates for rows without one is exactly that of `json_build_object`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tessera.annotations.annotations import repository as repo
from tessera.devstack.testing import OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task

_ATTRIBUTES = """ARRAY(SELECT json_build_object('spec_id', a.i, 'value', a.v)
                  FROM unnest({t}.attr_ids, {t}.attr_values) AS a(i, v))"""
_FIELDS = """'type', {t}.type, 'occluded', {t}.occluded, 'outside', {t}.outside,
    'z_order', {t}.z_order, 'rotation', {t}.rotation, 'points', {t}.points, 'id', {t}.id,
    'frame', {t}.frame, 'label_id', {t}.label_id, 'group', {t}."group",
    'source', {t}.source, 'attributes', """
REFERENCE = {
    "tags": f"""SELECT json_build_object('id', t.id, 'frame', t.frame, 'label_id', t.label_id,
        'group', t."group", 'source', t.source, 'attributes', {_ATTRIBUTES.format(t="t")})::text
        FROM annotations.tags t WHERE t.job_id = $1 ORDER BY t.frame, t.id""",
    "shapes": f"""SELECT json_build_object({_FIELDS.format(t="s")}{_ATTRIBUTES.format(t="s")},
        'elements', CASE WHEN s.type = 'skeleton' THEN ARRAY(
            SELECT json_build_object({_FIELDS.format(t="e")}{_ATTRIBUTES.format(t="e")},
                                     'score', e.score)
            FROM annotations.shapes e WHERE e.parent_id = s.id ORDER BY e.id) ELSE '{{}}' END,
        'score', s.score)::text
        FROM annotations.shapes s WHERE s.job_id = $1 AND s.parent_id IS NULL
        ORDER BY s.frame, s.id""",
}
NOTES = ['a "quoted" \\ back', "é 😀 ü", "tab\there\nnew line\r\x01\x1f\x7f", "", "x'y"]
NUMBERS = [1e20, 1e-7, 0.1, -0.0, 123456789012345.0, 1e15, 1e16, 2.5e-5, 1 / 3, -7.25]


async def test_concatenated_text_equals_json_build_object(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        points = {"type": "points", "frame": 2, "points": [1.5, 2.0], "attributes": []}
        side = [{"spec_id": seed.specs["side"], "value": "right"}]
        body: dict[str, Any] = {"tags": [], "shapes": [{
            "type": "skeleton", "label_id": seed.labels["body"], "frame": 2, "points": [],
            "attributes": [],
            "elements": [{**points, "label_id": seed.labels["head"], "attributes": side},
                         {**points, "label_id": seed.labels["tail"], "outside": True}],
        }]}  # fmt: skip
        specs = [seed.specs[name] for name in ("color", "speed", "parked", "note")]
        values = ["blue", "5", "true"]
        for count in range(5):
            for note in NOTES:
                attributes = [
                    {"spec_id": spec, "value": value}
                    for spec, value in zip(specs[:count], [*values, note], strict=False)
                ]
                body["shapes"].append({
                    "type": "polygon", "label_id": seed.labels["car"], "frame": count,
                    "points": NUMBERS, "rotation": 12.345, "z_order": -3, "occluded": True,
                    "group": 7, "source": "semi-auto", "attributes": attributes,
                })  # fmt: skip
                body["tags"].append(
                    {"label_id": seed.labels["car"], "frame": count, "attributes": attributes}
                )
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        put = await svc.client.put(url, json=body)
        assert put.status_code == 200, put.text

        async with svc.platform.database.engine.connect() as connection:
            conn = await repo.raw_connection(connection)
            for kind, sql in (("tags", repo.TAGS_SQL), ("shapes", repo.SHAPES_SQL)):
                reference = [row[0] for row in await conn.fetch(REFERENCE[kind], seed.job_ids[0])]
                stored = [row[4] for row in await conn.fetch(sql, [seed.job_ids[0]])]
                assert len(stored) == len(body[kind])
                assert [orjson.loads(t) for t in stored] == [orjson.loads(t) for t in reference]
                await conn.execute(f"UPDATE annotations.{kind} SET doc = NULL")
                built = [row[4] for row in await conn.fetch(sql, [seed.job_ids[0]])]
                assert built == reference, kind
