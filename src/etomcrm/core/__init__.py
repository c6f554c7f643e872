"""What every area stands on: TMF resource handling, events, audit, idempotency."""
