"""3.4 Selling: prospects, education, quotes, customer data, cross/up-selling, feasibility
and credit before the order."""
