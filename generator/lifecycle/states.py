"""The state machine of activities and tasks: PLANNED → PROCESSING → PROCESSED | FAILED | ABORTED.

A PLANNED activity (or task) may also be ABORTED before it starts: nothing ran, so nothing is left half done.
Every other move is illegal and answered 409 with the current state; final states never change."""

from __future__ import annotations

from generator.lifecycle.problems import OdmProblem

PLANNED, PROCESSING, PROCESSED, FAILED, ABORTED = "PLANNED", "PROCESSING", "PROCESSED", "FAILED", "ABORTED"
STATES = (PLANNED, PROCESSING, PROCESSED, FAILED, ABORTED)
FINAL = frozenset({PROCESSED, FAILED, ABORTED})
MOVES: dict[str, frozenset[str]] = {
    PLANNED: frozenset({PROCESSING, ABORTED}),
    PROCESSING: frozenset({PROCESSED, FAILED, ABORTED}),
    PROCESSED: frozenset(), FAILED: frozenset(), ABORTED: frozenset(),
}


def check_move(kind: str, ident: int, current: str, target: str) -> None:
    """Raise a 409 (40902) naming the current state when `current → target` is not a legal move."""
    if target not in MOVES[current]:
        allowed = sorted(s for s, targets in MOVES.items() if target in targets)
        raise OdmProblem(409, 40902, f"Illegal {kind} state transition",
                         f"{kind.capitalize()} {ident} is {current}; it can become {target} only from "
                         f"{' or '.join(allowed)} (current state: {current})")
