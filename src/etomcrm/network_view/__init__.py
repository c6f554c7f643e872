"""Customer Network Management (seed 5.1): the customer's own network as it sees it in
the portal. A read model over the areas below it (sites, products, the network, tickets,
SLA standing); nothing below it reads it."""
