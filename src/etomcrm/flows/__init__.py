"""The end-to-end flows (Fulfillment, Assurance, Billing) as durable DBOS workflows."""
