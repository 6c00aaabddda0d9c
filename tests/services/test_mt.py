"""The MT handler with the real bundled Bergamot models on real sentences."""

import pytest

from services.mt.__main__ import loops
from services.mt.handler import handle, pieces, split_sentences, translate
from services.mt.model import MtModel, load_model
from services.mt.settings import MtSettings
from shared import streams
from shared.messages import Envelope, TranscribeRequest, TranslateRequest
from shared.worker import Rejected

pytestmark = pytest.mark.model

LECTURE = (
    "Welcome back to the course on distributed systems. Last week we talked about clocks "
    "and the ordering of events. Today we will look at replication, and why keeping several "
    "copies of the same data consistent is much harder than it first appears."
)


@pytest.fixture(scope="module")
def settings() -> MtSettings:
    return MtSettings()


@pytest.fixture(scope="module")
def bergamot(settings: MtSettings) -> MtModel:
    return load_model(settings)


def run(model: MtModel, settings: MtSettings, text: str, source: str, target: str) -> str:
    request = TranslateRequest(text=text, source=source, target=target)
    [result] = handle(model, settings, Envelope(payload=request))
    assert (result.source, result.target) == (source, target)
    assert result.model == f"bergamot:{source}-{target}" and result.processing_s > 0
    return result.text


def test_serves_every_bundled_pair_by_default(bergamot: MtModel) -> None:
    assert bergamot.pairs == ["en-pt", "pt-en"]


def test_english_to_portuguese(bergamot: MtModel, settings: MtSettings) -> None:
    text = run(bergamot, settings, "I would like to book a table for two people.", "en", "pt")
    assert "reservar uma mesa" in text and "duas pessoas" in text, text


def test_several_sentences_in_one_batch(bergamot: MtModel, settings: MtSettings) -> None:
    text = run(
        bergamot,
        settings,
        "I would like to book a table for two people. Where is the train station?",
        "en",
        "pt",
    )
    assert text.startswith("Gostaria de reservar uma mesa"), text
    assert "estação" in text and text.endswith("?"), text


def test_portuguese_to_english(bergamot: MtModel, settings: MtSettings) -> None:
    text = run(
        bergamot, settings, "Bom dia. Hoje vamos falar sobre sistemas distribuídos.", "pt", "en"
    )
    assert "good morning" in text.lower() and "distributed systems" in text.lower(), text


def test_long_text_keeps_every_sentence(bergamot: MtModel, settings: MtSettings) -> None:
    # Sent whole, Bergamot returns only about a third of this; a sentence at a time keeps it all.
    text = run(bergamot, settings, " ".join([LECTURE] * 6), "en", "pt")
    assert text.count("sistemas distribuídos") == 6, text
    assert text.count("replicação") == 6, text


def test_line_breaks_survive(bergamot: MtModel, settings: MtSettings) -> None:
    text = run(bergamot, settings, "Good morning.\n\nThank you very much.\nSee you.", "en", "pt")
    assert text.count("\n") == 3 and text.startswith("Bom dia."), text


@pytest.mark.parametrize(
    "payload, code",
    [
        (TranslateRequest(text="Hello.", source="en", target="de"), "unsupported_pair"),
        (TranslateRequest(text="Hello.", source="en", target="en"), "unsupported_pair"),
        (TranslateRequest(text="  \n ", source="en", target="pt"), "empty_text"),
        (TranslateRequest(text="Hello\x00world.", source="en", target="pt"), "invalid_text"),
        (TranscribeRequest(audio=b""), "wrong_kind"),
    ],
)
def test_bad_requests_are_rejected(
    bergamot: MtModel, settings: MtSettings, payload: object, code: str
) -> None:
    with pytest.raises(Rejected) as info:
        list(handle(bergamot, settings, Envelope(payload=payload)))  # type: ignore[arg-type]
    assert info.value.code == code
    if code == "unsupported_pair":
        assert "['en-pt', 'pt-en']" in info.value.message


def test_configured_pairs_only(bergamot: MtModel) -> None:
    settings = MtSettings(pairs=["pt-en"])
    model = load_model(settings)
    assert model.pairs == ["pt-en"]
    with pytest.raises(Rejected, match="not served"):
        translate(model, settings, TranslateRequest(text="Hello.", source="en", target="pt"))


def test_unbundled_pair_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bundled pairs"):
        load_model(MtSettings(pairs=["en-de"]))


def test_one_stream_and_heartbeat_name_per_pair(bergamot: MtModel) -> None:
    settings = MtSettings(worker_name="w1")
    specs = loops(bergamot, settings)
    assert [s.stream for s, _ in specs] == [
        streams.jobs("mt", "en-pt"),
        streams.jobs("mt", "pt-en"),
    ]
    assert [w.worker_name for _, w in specs] == ["w1:en-pt", "w1:pt-en"]
    assert [s.languages for s, _ in specs] == [["en", "pt"], ["pt", "en"]]
    assert [s.model for s, _ in specs] == ["bergamot:en-pt", "bergamot:pt-en"]


def test_sentence_splitting() -> None:
    text = 'He said: "Stop." Then 3 people left. Why? (Really.) Yes, e.g. this'
    assert split_sentences(text, 60, 400) == [
        'He said: "Stop."',
        "Then 3 people left.",
        "Why?",
        "(Really.)",
        "Yes, e.g. this",
    ]


def test_long_sentences_are_cut_at_clauses_then_words() -> None:
    assert pieces("one two, three four, five six", 3) == ["one two,", "three four,", "five six"]
    assert pieces(" ".join(["w"] * 7), 3) == ["w w w", "w w w", "w"]
    assert pieces("short one", 3) == ["short one"]


def test_words_without_spaces_are_cut_too() -> None:
    assert split_sentences("." * 10 + " ok", 60, 4) == ["....", "....", "..", "ok"]
    assert split_sentences("ab cd ef. Next one", 60, 5) == ["ab cd", "ef.", "Next", "one"]


class Recording:
    """The real model, noting each input it is given."""

    def __init__(self, model: MtModel) -> None:
        self.model = model
        self.inputs: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def translate_batch(self, texts: list[str], pair: str) -> list[str]:
        self.inputs += texts
        return self.model.translate_batch(texts, pair)


def test_pathological_input_reaches_the_model_in_bounded_pieces(
    bergamot: MtModel, settings: MtSettings
) -> None:
    # Ten thousand dots were one 10,000-character "sentence": 31-38 s of Bergamot for "...".
    recording = Recording(bergamot)
    dots = run(recording, settings, "." * 10_000, "en", "pt")  # type: ignore[arg-type]
    assert recording.inputs == [] and dots.replace(" ", "") == "." * 10_000
    text = run(recording, settings, "Good morning. " + "a" * 1_000, "en", "pt")  # type: ignore[arg-type]
    assert text.startswith("Bom dia.")
    assert len(recording.inputs) == 4  # the sentence, then the long word in three pieces
    assert max(len(piece) for piece in recording.inputs) <= settings.max_sentence_chars
