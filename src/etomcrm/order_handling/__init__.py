"""3.5 Order handling: accept, issue, track and complete product orders."""
