"""User-facing errors.

Anything raised as :class:`UnmaskError` is a problem with the user's input (a missing file, a malformed row,
an unknown name). The CLI prints its message on one line (or the listed problems) and exits non-zero,
without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from pathlib import Path


class UnmaskError(Exception):
    """A problem the user can fix; the message names what and where."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])

    def render(self) -> str:
        lines = [f"error: {self}"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class VideoError(UnmaskError):
    """A video that is missing, corrupt, or shorter than asked (also a frame folder's; :mod:`unmask.data.video`)."""


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise UnmaskError naming it if it does not exist."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise UnmaskError(f"{what} not found: {p}")
    return p
