"""Cutting text into bounded pieces: the gateway cuts a long translation into jobs, the MT
worker cuts a job into model inputs, both at the same sentence ends.

Bounds are in characters as well as words: a translation model's cost grows faster than
its input's token count, and a "word" with no space in it (ten thousand dots) can be any
number of tokens.
"""

import re

# Line breaks (with the blanks around them) are kept as they are, so paragraphs survive.
LINE_BREAK = re.compile(r"(\s*\n\s*)")
# A sentence ends at . ! ? or … (maybe inside a closing quote or bracket), then space and
# what looks like the start of a new sentence.
SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?=[\"'“‘(\[¿¡]?[A-ZÀ-Ý0-9])")
_SPACE = re.compile(r"\s+")


def cut_at_spaces(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars``, cut at spaces; a longer word every
    ``max_chars``."""
    out: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.append(word[:max_chars])
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    return out


def _last_cut(window: str, max_chars: int) -> re.Match[str] | None:
    """The latest good place to end a piece within ``window[:max_chars]``: a line break,
    else a sentence end, else any space."""
    for pattern in (LINE_BREAK, SENTENCE_END, _SPACE):
        cuts = [m for m in pattern.finditer(window) if 0 < m.start() <= max_chars]
        if cuts:
            return cuts[-1]
    return None


def bounded_chunks(text: str, max_chars: int) -> list[tuple[str, str]]:
    """``text`` (stripped) as (chunk, separator) pairs, each chunk at most ``max_chars``, cut
    where a reader would pause; joining each chunk and its separator gives the text back with
    a line break kept as it is and any other cut as one space."""
    text = text.strip()
    chunks: list[tuple[str, str]] = []
    while len(text) > max_chars:
        # A little past the bound, so a sentence end's look-ahead sees its next letter.
        cut = _last_cut(text[: max_chars + 2], max_chars)
        if cut is None:
            chunks.append((text[:max_chars], ""))
            text = text[max_chars:]
            continue
        end = cut.end()
        while end < len(text) and text[end].isspace():  # blanks past the window's edge
            end += 1
        blanks = text[cut.start() : end]
        chunks.append((text[: cut.start()], blanks if "\n" in blanks else " "))
        text = text[end:]
    if text:
        chunks.append((text, ""))
    return chunks
