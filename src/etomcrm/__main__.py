"""``python -m etomcrm`` is the ``etomcrm`` command."""

from etomcrm.cli import app

app()
