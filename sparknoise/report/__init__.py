"""The label-health report: its data (``data``), its self-contained HTML (``html``) and the plots
(``plots``, matplotlib imported lazily). Pure rendering: no Delta tables or runs-table knowledge
(the ``jobs`` layer reads those). Depends on ``core``."""
