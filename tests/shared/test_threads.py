"""The handler thread pool across fork (bench/scaleout and multiprocessing fork workers)."""

import asyncio
import multiprocessing
from collections.abc import Iterator

from shared.messages import Envelope, TranscribeRequest, Transcript
from shared.threads import iterate_in_thread


def _answer(job: Envelope) -> Iterator[Transcript]:
    yield Transcript(text="ok", language="en", duration_s=0.0)


async def _one() -> list[str]:
    job = Envelope(payload=TranscribeRequest(audio=b"\x00\x00"))
    return [r.text async for r in iterate_in_thread(_answer, job)]  # type: ignore[attr-defined]


def _in_child(results: "multiprocessing.Queue[list[str]]") -> None:
    results.put(asyncio.run(asyncio.wait_for(_one(), 10)))


def test_a_forked_child_runs_handlers_after_the_parent_did() -> None:
    assert asyncio.run(_one()) == ["ok"]  # the parent's pool now has an idle thread
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_in_child, args=(results,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=1) == ["ok"]
