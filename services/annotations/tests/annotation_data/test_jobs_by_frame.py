"""`JobsByFrame` finds the jobs that hold a frame as a scan of every job does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.annotations.annotations.repository import JobRange
from tessera.annotations.annotations.service import JobsByFrame


@st.composite
def task_jobs(draw: st.DrawFn) -> list[JobRange]:
    """Segments with overlap, some with frame sets (ground truth jobs), shuffled."""
    size = draw(st.integers(1, 200))
    segment = draw(st.integers(1, 60))
    overlap = draw(st.integers(0, segment - 1))
    jobs: list[JobRange] = []
    start = 0
    while start < size:
        stop = min(start + segment - 1, size - 1)
        jobs.append(JobRange(len(jobs) + 1, 1, start, stop, None, 0))
        start += segment - overlap
    for frames in draw(st.lists(st.sets(st.integers(0, size - 1), min_size=1), max_size=2)):
        jobs.append(JobRange(len(jobs) + 1, 1, min(frames), max(frames), frozenset(frames), 0))
    return draw(st.permutations(jobs))


@settings(max_examples=200, deadline=None)
@given(task_jobs())
def test_jobs_by_frame_is_the_scan(jobs: list[JobRange]) -> None:
    index = JobsByFrame(jobs)
    last = max(job.stop_frame for job in jobs)
    for frame in range(-2, last + 3):
        expected = [job for job in jobs if job.covers(frame)]
        assert index(frame) == expected
        assert index.holds(frame) == bool(expected)


def test_no_jobs_hold_nothing() -> None:
    assert JobsByFrame([])(0) == []
    assert not JobsByFrame([]).holds(0)
