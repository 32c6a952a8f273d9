"""What ``prepare`` tells the user at the end: per subject, which detector found the faces and what was lost.

A dataset where the detector silently misses one subject's faces is biased in a way no metric shows, so every
run ends with a table over all clips of the manifest (this run's and those finished before)::

    faces per subject (frames by where their box came from; nearest = borrowed from the nearest frame with a face)
      subject  clips  lost  yuface  haar  annotated  nearest
      s01         30     0     330     0          0        0
      s02         30    12     190    14          0        2
    warning: subject s02 lost 12 of 30 clips (40% > 20%); reasons in DIR/failures.csv
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NEAREST = "nearest"  # meta.json writes "nearest:<frame>" for a borrowed box


@dataclass
class SubjectTally:
    clips: int = 0  # finished
    lost: int = 0  # failed in this run
    frames: Counter = field(default_factory=Counter)  # box source -> number of frames


@dataclass
class DetectionSummary:
    subjects: dict[str, SubjectTally] = field(default_factory=dict)

    def _tally(self, subject: str) -> SubjectTally:
        return self.subjects.setdefault(subject, SubjectTally())

    def add_clip(self, subject: str, meta: dict) -> None:
        """A finished clip: count the source of each of its frames' boxes."""
        tally = self._tally(subject)
        tally.clips += 1
        for source in meta.get("box_source", {}).values():
            tally.frames[NEAREST if source.startswith(f"{NEAREST}:") else source] += 1

    def add_loss(self, subject: str) -> None:
        self._tally(subject).lost += 1

    @property
    def borrowed(self) -> int:
        """Frames without a face of their own that took the nearest detected frame's box."""
        return sum(t.frames[NEAREST] for t in self.subjects.values())

    def found_by(self, source: str) -> int:
        return sum(t.frames[source] for t in self.subjects.values())

    def table(self) -> list[str]:
        if not self.subjects:
            return []
        sources = sorted({s for t in self.subjects.values() for s in t.frames} - {NEAREST}) + [NEAREST]
        header = ["subject", "clips", "lost", *sources]
        rows = [[subject, str(t.clips), str(t.lost), *(str(t.frames[s]) for s in sources)]
                for subject, t in sorted(self.subjects.items())]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        fmt = lambda r: "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
        return ([f"faces per subject (frames by where their box came from; {NEAREST} = borrowed from the nearest "
                 f"frame with a face):", fmt(header)] + [fmt(r) for r in rows])

    def warnings(self, max_loss: float) -> list[str]:
        """Subjects that lost more than ``max_loss`` (a share) of their clips."""
        out = []
        for subject, t in sorted(self.subjects.items()):
            total = t.clips + t.lost
            if total and t.lost / total > max_loss:
                out.append(f"warning: subject {subject} lost {t.lost} of {total} clips "
                           f"({t.lost / total:.0%} > {max_loss:.0%}); reasons in failures.csv")
        return out
