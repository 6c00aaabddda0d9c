"""The live benchmark's command line: every system gets the same model threads."""

from bench import live
from bench.live import Shape


def test_pyparrot_workers_take_two_calls_at_once_between_them_unless_told() -> None:
    config = live.config_from(live.parser().parse_args(["--workers", "2,1"]))
    assert config.workers == (1, 2)
    # 2 threads per call, as the peers: one worker runs 2 calls at once, two workers one each.
    assert [live.worker_shape(config, n) for n in config.workers] == [Shape(2, 2), Shape(1, 2)]
    assert live.worker_shape(config, 4) == Shape(1, 2)  # never below one
    threads = live.config_from(live.parser().parse_args(["--stt-threads", "1"]))
    assert [live.worker_shape(threads, n) for n in (1, 2)] == [Shape(2, 1), Shape(1, 1)]
    calls = live.config_from(live.parser().parse_args(["--stt-calls", "3"]))
    assert live.worker_shape(calls, 2) == Shape(3, 2)
    assert Shape(2, 1).describe() == "2 calls × 1 thread"


def test_webrtc_sessions_are_a_second_pyparrot_system_unless_turned_off() -> None:
    assert live.config_from(live.parser().parse_args([])).webrtc
    off = live.config_from(live.parser().parse_args(["--no-webrtc"]))
    assert not off.webrtc
    batch = live.Batch(live.PYPARROT, 1, 1, [], [], transport=live.WEBRTC)
    assert batch.label == "PyParrot over WebRTC, 1 STT worker"
