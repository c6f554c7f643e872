"""Analytical CRM (seed 5.3): the analytical store and what is measured on it."""
