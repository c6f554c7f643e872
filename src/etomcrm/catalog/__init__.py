"""3.1 Support & Readiness: the product catalog, SLA levels and materials in stock."""
