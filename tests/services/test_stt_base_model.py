"""The multilingual base model, joined from its two third-party packages, is checked by
SHA-256 at every load: a swapped or damaged file is never loaded."""

import hashlib
from pathlib import Path

import pytest

from services.stt.model import BASE_MODEL_SHA256, _bundled_base


def sha256(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def test_the_joined_model_has_the_pinned_hash(tmp_path: Path) -> None:
    target = _bundled_base(tmp_path)
    assert sha256(target / "model.bin") == BASE_MODEL_SHA256
    assert {p.name for p in target.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }


def test_a_tampered_cache_is_joined_again(tmp_path: Path) -> None:
    model_bin = _bundled_base(tmp_path) / "model.bin"
    with model_bin.open("r+b") as out:  # same size, one byte changed: a size check passes
        out.seek(1_000_000)
        byte = out.read(1)
        out.seek(1_000_000)
        out.write(bytes([byte[0] ^ 0xFF]))
    assert sha256(model_bin) != BASE_MODEL_SHA256
    _bundled_base(tmp_path)
    assert sha256(model_bin) == BASE_MODEL_SHA256


def test_packages_that_are_not_the_pinned_release_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not the pinned release"):
        _bundled_base(tmp_path, expected_sha256="0" * 64)
    assert list((tmp_path / "whisper-base").iterdir()) == []  # nothing half-written kept
