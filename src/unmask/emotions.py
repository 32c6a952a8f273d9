"""MFED's label space: the six basic emotions, their spellings, and MFED's two tasks over them."""

from __future__ import annotations

from unmask.errors import UnmaskError
from unmask.tasks import Task

#: Canonical names, in label-index order (the order of the DSID paper).
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")

#: Other spellings of the six emotions -> canonical name (the MFED task declarations carry them).
EMOTION_ALIASES: dict[str, str] = {
    "anger": "anger", "angry": "anger", "ang": "anger", "an": "anger", "rage": "anger",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust", "dis": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fea": "fear", "fe": "fear",
    "happiness": "happiness", "happy": "happiness", "happ": "happiness", "hap": "happiness", "ha": "happiness",
    "joy": "happiness", "smile": "happiness",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "surprising": "surprise", "sur": "surprise", "su": "surprise",
}


def normalize_emotion(name: object) -> str:
    """Map a spelling such as ``"Happy"``, ``"happiness"`` or ``" HAPPINESS "`` to its canonical name.

    Raises :class:`UnmaskError` listing the canonical names when the spelling is unknown.
    """
    key = str(name).strip().lower().replace("_", " ").replace("-", " ")
    if key in EMOTION_ALIASES:
        return EMOTION_ALIASES[key]
    raise UnmaskError(f"unknown emotion {name!r}; expected one of: {', '.join(EMOTIONS)}")


def emotion_index(name: str) -> int:
    return EMOTIONS.index(normalize_emotion(name))


def masked_pairs() -> list[tuple[str, str]]:
    """The 30 ordered (true, disguised) pairs with true != disguised."""
    return [(t, d) for t in EMOTIONS for d in EMOTIONS if t != d]


#: MFED's tasks: the emotion a person feels (``true``) and the one they were asked to show (``disguised``).
MFED_TASKS: tuple[Task, ...] = (
    Task("true", "single", EMOTIONS, column="true_emotion", title="felt", aliases=EMOTION_ALIASES),
    Task("disguised", "single", EMOTIONS, column="disguised_emotion", title="shown", aliases=EMOTION_ALIASES),
)
