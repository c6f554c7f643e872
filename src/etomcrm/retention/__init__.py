"""3.9 Retention and loyalty: the relationship after the sale (satisfaction, risk)."""
