"""The package's one progress-bar style."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from tqdm.auto import tqdm


def bar(iterable: Optional[Iterable] = None, *, show: bool, **kwargs: Any) -> tqdm:
    """A tqdm bar, shown only where `show` (the local main process).

    An explicit `disable=False` would override the user's TQDM_DISABLE (and tqdm's other TQDM_* settings), so
    `disable` is passed only to hide the bar."""
    if not show:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
