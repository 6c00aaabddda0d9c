"""The live benchmark's command line: every system gets the same model threads."""

from bench import live


def test_pyparrot_workers_split_the_peers_thread_budget_unless_told() -> None:
    config = live.config_from(live._parser().parse_args(["--workers", "2,1"]))
    assert config.workers == (1, 2)
    assert [live.threads_per_worker(config, n) for n in config.workers] == [2, 1]
    assert live.threads_per_worker(config, 4) == 1  # never below one
    forced = live.config_from(live._parser().parse_args(["--stt-threads", "2"]))
    assert [live.threads_per_worker(forced, n) for n in (1, 2)] == [2, 2]
