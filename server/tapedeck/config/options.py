"""Every server setting, declared once: config key, parser, default, help, flag, env var.

Each option is one :class:`Option` in the module of its topic, in the group it belongs
with; this module puts the groups together in the order ``tapedeck serve --help`` and
``tapedeck show --settings`` list them:

- :mod:`.serving_options` — the mode, cassettes, address and pacing (``SERVING``); request
  sizes, waits and test ids kept (``LIMITS``); faults for every response (``FAULTS``); who
  may drive the server (``ACCESS``); memory kept to answer faster (``CACHES``)
- :mod:`.matching_options` — sequences and what is matched (``REPLAY``); rules that rewrite
  and check a request, and what a miss gets (``RULES``); reading the library (``LIBRARY``)
- :mod:`.recording_options` — the upstream and its timeouts (``UPSTREAM``); what is
  written to cassettes (``RECORDING``)
- :mod:`.state_options` — workers and where per-test state lives (``STATE``)
- :mod:`.observing_options` — the request journal (``JOURNAL``) and metrics (``METRICS``)

A new option goes at the end of the group whose subject it shares; the help lists it
there. The ``--flag`` and ``TAPEDECK_*`` variable are derived from the key; the help text
says the default. :mod:`tapedeck.config.settings` builds :class:`Settings` from them, and
the CLI, ``tapedeck.serve(...)`` and the pytest plugin all go through its ``resolve``.
"""

from __future__ import annotations

from typing import Any

from .matching_options import LIBRARY, REPLAY, RULES
from .mode import Mode
from .observing_options import JOURNAL, METRICS
from .option import Option
from .recording_options import RECORDING, UPSTREAM
from .serving_options import ACCESS, CACHES, FAULTS, LIMITS, SERVING
from .state_options import STATE

__all__ = ["BY_KEY", "DEFAULTS", "OPTIONS", "Mode", "Option"]

OPTIONS: tuple[Option, ...] = (
    *SERVING,
    *LIMITS,
    *REPLAY,
    *FAULTS,
    *UPSTREAM,
    *ACCESS,
    *RECORDING,
    *RULES,
    *LIBRARY,
    *STATE,
    *JOURNAL,
    *CACHES,
    *METRICS,
)
#: Each option by its key.
BY_KEY = {o.key: o for o in OPTIONS}
#: Each option's default by its key.
DEFAULTS: dict[str, Any] = {o.key: o.default for o in OPTIONS}
