"""Plain-text tables for the operator commands (status, topics describe, dry runs)."""

from __future__ import annotations

from collections.abc import Sequence

Cell = str | int | float | bool | None


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Columns sized to their content; numbers right-aligned, text left-aligned."""
    texts = [[_text(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in texts)])


def _text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    return str(cell)
