"""Where numba keeps the compiled search kernels.

numba caches them beside the sources (``retrieval/__pycache__``), else under the user's home. When
neither can be written (a read-only install run by a user whose HOME is not writable), importing
the kernels would fail; instead the cache goes to ``$XDG_CACHE_HOME/newsdesk/numba`` (default
``~/.cache``) when that is writable, else to a private temporary folder, and a warning says that the
kernels will be compiled again at every start. ``NUMBA_CACHE_DIR``, when set, always wins.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            return True
    except OSError:
        return False


def choose_cache_dir(source_dir: Path) -> None:
    """Set ``NUMBA_CACHE_DIR`` when numba could not write its cache itself. Call before importing numba."""
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(source_dir / "__pycache__"):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    user_cache = Path(base) / "newsdesk" / "numba"
    if _writable(user_cache):
        os.environ["NUMBA_CACHE_DIR"] = str(user_cache)
        return
    # A fresh private folder: never a shared, predictable path another user could fill with cache files.
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="newsdesk-numba-")
    log.warning(
        "neither %s nor %s can be written: the search kernels are compiled again at every start "
        "(set NUMBA_CACHE_DIR to a writable folder to keep them)",
        source_dir / "__pycache__",
        user_cache,
    )
