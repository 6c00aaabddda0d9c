"""A spoken-language ID corpus: many sentences per language, read by several espeak-ng voices,
variants and speeds, clean, under noise or in a room, plus the real English recordings.

Built from a seed, so a run can be repeated; every sentence lands wholly in one half (``dev``
to choose a rule on, ``held-out`` to report it on), so no rule is judged on a text it saw.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bench import quality_corpus as qc

SEED = 17
NOISE_SNR_DB = 10.0

# Ten everyday sentences per language; the first two of es/pt/de/fr are the quality corpus's.
SENTENCES: dict[str, tuple[str, ...]] = {
    "es": (
        *qc.SENTENCES["es"],
        "¿Podrías decirme dónde está la parada del autobús más cercana?",
        "Los niños jugaron en el parque hasta que empezó a llover.",
        "Necesito comprar leche, huevos y un poco de pan para la cena.",
        "El médico me dijo que debería caminar media hora cada día.",
        "Este verano queremos viajar al norte para ver las montañas.",
        "La reunión de mañana empieza a las diez en la sala grande.",
        "Mi abuelo cuenta historias muy divertidas sobre su juventud.",
        "Por favor, cierra la ventana porque hace mucho frío aquí dentro.",
    ),
    "pt": (
        *qc.SENTENCES["pt"],
        "Você pode me dizer onde fica a estação de comboios mais próxima?",
        "As crianças brincaram no jardim até começar a chover.",
        "Preciso de comprar leite, ovos e um pouco de pão para o jantar.",
        "O médico disse que eu devia caminhar meia hora todos os dias.",
        "Neste verão queremos viajar para o norte para ver as montanhas.",
        "A reunião de amanhã começa às dez horas na sala grande.",
        "O meu avô conta histórias muito engraçadas sobre a sua juventude.",
        "Por favor, fecha a janela porque está muito frio aqui dentro.",
    ),
    "de": (
        *qc.SENTENCES["de"],
        "Kannst du mir sagen, wo die nächste Bushaltestelle ist?",
        "Die Kinder haben im Park gespielt, bis es angefangen hat zu regnen.",
        "Ich muss noch Milch, Eier und etwas Brot für das Abendessen kaufen.",
        "Der Arzt hat gesagt, ich soll jeden Tag eine halbe Stunde spazieren gehen.",
        "Diesen Sommer wollen wir in den Norden fahren, um die Berge zu sehen.",
        "Die Besprechung morgen beginnt um zehn Uhr im großen Saal.",
        "Mein Großvater erzählt sehr lustige Geschichten aus seiner Jugend.",
        "Mach bitte das Fenster zu, denn hier drinnen ist es sehr kalt.",
    ),
    "fr": (
        *qc.SENTENCES["fr"],
        "Pourriez-vous me dire où se trouve l'arrêt de bus le plus proche?",
        "Les enfants ont joué dans le parc jusqu'à ce qu'il commence à pleuvoir.",
        "Je dois acheter du lait, des œufs et un peu de pain pour le dîner.",
        "Le médecin m'a dit que je devrais marcher une demi-heure chaque jour.",
        "Cet été, nous voulons partir vers le nord pour voir les montagnes.",
        "La réunion de demain commence à dix heures dans la grande salle.",
        "Mon grand-père raconte des histoires très drôles sur sa jeunesse.",
        "Ferme la fenêtre, s'il te plaît, parce qu'il fait très froid ici.",
    ),
    "it": (
        "Il treno del mattino parte alle otto e arriva a Roma prima di mezzogiorno.",
        "Mia sorella lavora in un ospedale e torna a casa molto tardi ogni sera.",
        "Potresti dirmi dov'è la fermata dell'autobus più vicina?",
        "I bambini hanno giocato nel parco finché non ha cominciato a piovere.",
        "Devo comprare latte, uova e un po' di pane per la cena.",
        "Il medico mi ha detto che dovrei camminare mezz'ora ogni giorno.",
        "Quest'estate vogliamo andare al nord per vedere le montagne.",
        "La riunione di domani comincia alle dieci nella sala grande.",
        "Mio nonno racconta storie molto divertenti sulla sua giovinezza.",
        "Per favore, chiudi la finestra perché qui dentro fa molto freddo.",
    ),
    "en": (
        "The morning train leaves at eight and reaches the city before noon.",
        "My sister works at a hospital and comes home very late every night.",
        "Could you tell me where the nearest bus stop is?",
        "The children played in the park until it started to rain.",
        "I need to buy milk, eggs and some bread for dinner.",
        "The doctor told me I should walk for half an hour every day.",
        "This summer we want to travel north to see the mountains.",
        "Tomorrow's meeting starts at ten in the large room.",
        "My grandfather tells very funny stories about his youth.",
        "Please close the window because it is very cold in here.",
    ),
}
# espeak-ng's own (non-MBROLA) voices for each language, and voice variants and speeds to
# vary them by: a rule must hold across voices, not on one voice's quirks.
VOICES = {
    "es": ("es", "es-419"),
    "pt": ("pt", "pt-br"),
    "de": ("de",),
    "fr": ("fr-fr", "fr-be", "fr-ch"),
    "it": ("it",),
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-029"),
}
VARIANTS = ("", "+m3", "+f2", "+klatt", "+f4", "+m7")
SPEEDS_WPM = (140, 175)
CONDITIONS = ("clean", "noise", "room")
RENDERINGS = 2  # clips per sentence, each with its own voice, variant, speed and condition


@dataclass(frozen=True)
class LangClip:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    language: str
    held_out: bool
    how: str  # voice, variant, speed and condition, for the report


def _condition(rng: random.Random, audio: np.ndarray, condition: str) -> tuple[np.ndarray, str]:
    if condition == "noise":
        index = rng.randint(1, 4)
        return qc.with_noise(audio, NOISE_SNR_DB, index), f"snr{NOISE_SNR_DB:g}-n{index}"
    if condition == "room":
        index = rng.randint(1, 4)
        return qc.with_room(audio, index), f"rir{index}"
    return audio, "clean"


def _held_out(rng: random.Random, count: int) -> set[int]:
    """Half of ``count`` sentence indexes, drawn at random."""
    return set(rng.sample(range(count), count // 2))


def synthetic(rng: random.Random, codes: tuple[str, ...] = tuple(SENTENCES)) -> Iterator[LangClip]:
    """Each sentence read ``RENDERINGS`` times, each with a drawn voice, variant, speed and
    condition (conditions cycled so each language gets all three)."""
    for code in codes:
        held = _held_out(rng, len(SENTENCES[code]))
        for index, text in enumerate(SENTENCES[code]):
            for take in range(RENDERINGS):
                voice = rng.choice(VOICES[code]) + rng.choice(VARIANTS)
                speed = rng.choice(SPEEDS_WPM)
                condition = CONDITIONS[(index * RENDERINGS + take) % len(CONDITIONS)]
                audio, label = _condition(rng, qc.espeak(text, voice, speed), condition)
                how = f"{voice} {speed}wpm {label}"
                yield LangClip(f"{code}/s{index + 1}-{take + 1}", audio, code, index in held, how)


def recorded(rng: random.Random) -> Iterator[LangClip]:
    """The real English recordings (clean, and each again noisy or in a room) and the shared
    synthetic clips."""
    real = qc.real_sentences()
    held = _held_out(rng, len(real))
    for index, clip in enumerate(real):
        name = clip.name.removeprefix("real/")
        yield LangClip(f"en/{name}", clip.audio, "en", index in held, "human clean")
        condition = CONDITIONS[1 + index % 2]
        audio, label = _condition(rng, clip.audio, condition)
        yield LangClip(f"en/{name}-{label}", audio, "en", index in held, f"human {label}")
    conversation = qc.real_conversation()
    yield LangClip("en/conversation", conversation.audio, "en", True, "human telephone")
    for clip in qc.synthetic():
        name = clip.name.removeprefix("synthetic/")
        yield LangClip(f"{clip.language}/{name}", clip.audio, clip.language, False, "shared")


# Each language's voices as a user names them, for the plain set.
PLAIN_VOICES = {
    "es": ("es", "es-419"), "pt": ("pt", "pt-br"), "de": ("de",), "fr": ("fr-fr", "fr-be"),
    "it": ("it",),
}  # fmt: skip


def plain() -> Iterator[LangClip]:
    """Every sentence read by each plain voice (no variant) at both speeds, clean: the clips a
    user trying the product makes first. Marked held out (it has no dev half), though the
    English and near-tie guards of ``services.stt.langid`` were set looking at it too."""
    for code, voices in PLAIN_VOICES.items():
        for voice in voices:
            for index, text in enumerate(SENTENCES[code]):
                for speed in sorted(SPEEDS_WPM, reverse=True):
                    name = f"{code}/{voice}-s{index + 1}-{speed}"
                    audio = qc.espeak(text, voice, speed)
                    yield LangClip(name, audio, code, True, f"{voice} {speed}wpm clean")


def corpus(seed: int = SEED) -> list[LangClip]:
    """The whole corpus, the same for the same seed."""
    rng = random.Random(seed)
    return [*synthetic(rng), *recorded(rng)]
