"""etomcrm: the customer side of a telecom or IT service provider, along TM Forum's eTOM map."""

__version__ = "0.1.0"
