"""The harness's names for the runtime seam, which lives in `infertune.runtimes.session`
(the recipe and the opener lookup) and `infertune.runtimes.base` (the Session protocol and
the OPENERS registry). Kept for the modules that still import them from here
(search's executors and worker, measure/inprocess.py); new code imports from runtimes.
"""
from __future__ import annotations

from ..runtimes.base import OPENERS, Opener, Session
from ..runtimes.session import (TESTING_MODULE, SessionFactory, get_opener,
                                registered_opener_module, unknown_runtime_message)

__all__ = ["OPENERS", "Opener", "Session", "SessionFactory", "TESTING_MODULE", "get_opener",
           "registered_opener_module", "unknown_runtime_message"]
