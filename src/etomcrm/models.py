"""Every table of etomcrm, imported so ``Base.metadata`` is complete (Alembic, tests)."""

from etomcrm.analytics import models as analytics_models
from etomcrm.billing import bill_models
from etomcrm.billing import dunning_models as billing_dunning_models
from etomcrm.billing import models as billing_models
from etomcrm.catalog import models as catalog_models
from etomcrm.core import models as core_models
from etomcrm.customer_interface import models as customer_interface_models
from etomcrm.db import Base
from etomcrm.flows import models as flows_models
from etomcrm.marketing import models as marketing_models
from etomcrm.network import models as network_models
from etomcrm.order_handling import models as order_handling_models
from etomcrm.problem_handling import models as problem_handling_models
from etomcrm.qos_sla import models as qos_sla_models
from etomcrm.retention import models as retention_models
from etomcrm.security import models as security_models
from etomcrm.selling import models as selling_models

metadata = Base.metadata

__all__ = [
    "analytics_models",
    "bill_models",
    "billing_dunning_models",
    "billing_models",
    "catalog_models",
    "core_models",
    "customer_interface_models",
    "flows_models",
    "marketing_models",
    "metadata",
    "network_models",
    "order_handling_models",
    "problem_handling_models",
    "qos_sla_models",
    "retention_models",
    "security_models",
    "selling_models",
]
