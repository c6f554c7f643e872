"""Every table of etomcrm, imported so ``Base.metadata`` is complete (Alembic, tests)."""

from etomcrm.catalog import models as catalog_models
from etomcrm.core import models as core_models
from etomcrm.customer_interface import models as customer_interface_models
from etomcrm.db import Base
from etomcrm.security import models as security_models

metadata = Base.metadata

__all__ = [
    "catalog_models",
    "core_models",
    "customer_interface_models",
    "metadata",
    "security_models",
]
