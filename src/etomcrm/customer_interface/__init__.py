"""3.2 Customer Interface Management: parties, customers, sites and the contact history."""
