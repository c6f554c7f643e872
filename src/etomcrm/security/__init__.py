"""Who may call etomcrm: staff users, API keys, roles, customer scoping."""
