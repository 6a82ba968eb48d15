"""Errors users see: one line, naming the file and the field, never a traceback."""


class KinoraError(Exception):
    """An error with a message meant for the person who ran the command."""


class InputFileError(KinoraError, ValueError):
    """A campaign, seed or registry file is malformed."""

    def __init__(self, path: object, where: str, problem: str) -> None:
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def pydantic_location(loc: tuple) -> str:
    """Render a pydantic error location like ``items[3].prompt``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for job reasons and summaries.

    Errors raised in a Ray actor arrive wrapped (``RayTaskError(ValueError)``, its text a remote
    traceback); the original is ``.cause``.
    """
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
