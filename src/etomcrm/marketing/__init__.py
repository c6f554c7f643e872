"""3.3 Marketing fulfilment response: campaigns, collateral and the leads they bring."""
