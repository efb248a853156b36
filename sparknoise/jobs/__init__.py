"""The jobs and their plumbing: ``config`` (keys, defaults, validation), ``tables`` + ``run_log``
(pinned reads, run-scoped Delta writes, the runs table), ``session`` (the one Delta-enabled session
builder) and one module per job: ``detect``, ``inject``, ``evaluate``, ``report``, ``demo``.
The top layer under ``sparknoise.cli``; ``import sparknoise`` never imports it."""
