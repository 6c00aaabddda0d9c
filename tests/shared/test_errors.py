"""The client-error table and the text check both the gateway and the workers apply."""

from typing import get_args

import pytest

from shared import errors


def test_every_client_error_code_has_a_4xx_status() -> None:
    assert set(errors.STATUS) == set(get_args(errors.ClientError))
    assert set(errors.STATUS.values()) <= {400, 413, 422}


def test_failures_of_ours_have_no_client_status() -> None:
    for code in ("failed", "max_deliveries", "bad_backend_reply", "expired", "invalid_message"):
        assert errors.client_status(code) is None


@pytest.mark.parametrize("text", ["a\x00b", "bell \x07", "\x1b[31m red", "del \x7f", "c1 \x85"])
def test_control_characters_are_a_problem(text: str) -> None:
    problem = errors.text_problem(text)
    assert problem is not None and "control character U+" in problem


@pytest.mark.parametrize("text", ["Olá, mundo.", "tab\tand\nlines\r\n", "emoji 🦜", "ß–…"])
def test_ordinary_text_is_not(text: str) -> None:
    assert errors.text_problem(text) is None
