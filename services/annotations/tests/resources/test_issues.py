"""Review issues pinned to a frame and position of a job, with comments; resolvable."""

from tessera.devstack.testing import OpenService


async def test_issue_lifecycle(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        task = (
            await svc.client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
        ).json()
        made = await svc.client.post(
            f"/api/internal/tasks/{task['id']}/segments",
            json={"size": 30, "media_type": "video", "chunk_size": 8,
                  "segments": [{"start_frame": 0, "stop_frame": 19, "frames": [0, 5, 10]}]},
        )  # fmt: skip
        job_id = made.json()["jobs"][0]["id"]
        assert made.json()["jobs"][0]["frame_count"] == 3
        again = await svc.client.post(
            f"/api/internal/tasks/{task['id']}/segments",
            json={"size": 30, "media_type": "video", "chunk_size": 8,
                  "segments": [{"start_frame": 0, "stop_frame": 40}]},
        )  # fmt: skip
        assert again.status_code == 409
        job = (await svc.client.get(f"/api/jobs/{job_id}")).json()
        assert (job["mode"], job["media_type"], job["data_chunk_size"]) == (
            "interpolation",
            "video",
            8,
        )

        issue = {"job": job_id, "frame": 5, "position": [1.0, 2.0, 30.0, 40.0], "message": "gap"}
        created = await svc.client.post("/api/issues", json=issue)
        assert created.status_code == 201, created.text
        issue_id = created.json()["id"]
        assert created.json()["comments"]["count"] == 1
        off_frame = await svc.client.post("/api/issues", json={**issue, "frame": 6})
        assert off_frame.json()["errors"][0]["field"] == "body.frame"
        odd = await svc.client.post("/api/issues", json={**issue, "position": [1.0, 2.0, 3.0]})
        assert odd.json()["errors"][0]["field"] == "body.position"

        reply = await svc.client.post("/api/comments", json={"issue": issue_id, "message": "fixed"})
        assert reply.status_code == 201
        resolved = await svc.client.patch(f"/api/issues/{issue_id}", json={"resolved": True})
        assert resolved.json()["resolved"] is True
        assert resolved.json()["comments"]["count"] == 2
        listed = (await svc.client.get("/api/issues", params={"job_id": job_id})).json()
        assert [i["id"] for i in listed["results"]] == [issue_id]
        messages = (await svc.client.get("/api/comments", params={"issue_id": issue_id})).json()
        assert [c["message"] for c in messages["results"]] == ["fixed", "gap"]  # newest first
        assert (await svc.client.get(f"/api/jobs/{job_id}")).json()["issues"]["count"] == 1
        assert (await svc.client.delete(f"/api/issues/{issue_id}")).status_code == 204
        assert (await svc.client.get("/api/comments")).json()["count"] == 0
