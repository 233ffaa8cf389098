"""The two-process split of name reading (events._in_two_processes): the same answer as one
process, the second half really read by a forked child, and a child that fails is redone here."""

import os

import pytest

from triage.hotspots.events import _in_two_processes

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_second_half_is_read_by_a_child_and_the_answer_is_the_same():
    parent = os.getpid()

    def work(a: int, b: int) -> list[tuple[int, int]]:
        return [(i * i, os.getpid()) for i in range(a, b)]

    out = _in_two_processes(work, 10, workers=2, min_rows=1)
    assert [v for v, _ in out] == [i * i for i in range(10)]
    assert {pid for _, pid in out[:5]} == {parent}
    assert parent not in {pid for _, pid in out[5:]}  # read in the forked child
    # one worker, or fewer rows than the threshold: all here
    assert {pid for _, pid in _in_two_processes(work, 10, workers=1, min_rows=1)} == {parent}
    assert {pid for _, pid in _in_two_processes(work, 10, workers=2, min_rows=50)} == {parent}


def test_a_failing_child_is_redone_in_this_process():
    parent = os.getpid()

    def work(a: int, b: int) -> list[int]:
        if os.getpid() != parent:
            raise RuntimeError("child fails")
        return list(range(a, b))

    assert _in_two_processes(work, 8, workers=2, min_rows=1) == list(range(8))
