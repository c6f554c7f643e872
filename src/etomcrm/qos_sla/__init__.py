"""3.7 QoS/SLA management: SLAs per product, business-hour calendars, assessment,
violations and reports."""
