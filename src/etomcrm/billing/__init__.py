"""3.8 Billing & Collections. So far the receiving end of what other areas hand to
billing (SLA credits owed, products to start charging for): each lands on billing's
work list, where a person sees it until the billing run takes it over."""
