"""Text from the database, made safe to print on an operator's terminal.

Stored runs hold whatever a user, a model or a tool wrote. Printed raw, an escape sequence in
a message could conceal text, erase the line that shows a tool's arguments, or retitle the
window, and a right-to-left override could make ``delete.exe`` read as something harmless; a
``[bold]`` in the data would be taken as Rich markup. :func:`escape` shows every such character
as a visible ``\\x1b`` / ``\\u202e`` escape and escapes markup, so the CLI prints exactly what is
stored, no more.
"""

from __future__ import annotations

import re

from rich.markup import escape as escape_markup

__all__ = ["escape"]

# C0 controls but newline and tab, DEL, C1 controls, and the Unicode bidirectional controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` for Rich to print: control characters shown as escapes, markup escaped.

    Example: ``escape("ok\\x1b[2K[red]")`` gives ``"ok\\\\x1b\\\\[2K\\\\[red]"``, printed as
    ``ok\\x1b[2K[red]``.
    """
    return escape_markup(_UNSAFE.sub(_visible, text))
