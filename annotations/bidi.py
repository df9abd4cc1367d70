"""Bidirectional control characters: invisible marks that reorder the text around them, so that
"gnp.exe" can read as "exe.png" or a name can seem to be someone else's. None has a use in
titles, names, labels or comments here, so every write drops them (services, for the site, the
admin and the API alike), and templates isolate people's names (`<bdi>`) besides.

The embeddings U+202A–U+202E (LRE, RLE, PDF, LRO, RLO), the isolates U+2066–U+2069 (LRI, RLI,
FSI, PDI) and the marks U+200E, U+200F (LRM, RLM) and U+061C (ALM).
"""

__all__ = ["BIDI_CONTROLS", "strip_bidi"]

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_DROP = str.maketrans(dict.fromkeys(BIDI_CONTROLS))


def strip_bidi(text: str) -> str:
    """`text` without bidirectional control characters."""
    return text.translate(_DROP)
