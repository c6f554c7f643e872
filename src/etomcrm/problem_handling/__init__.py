"""3.6 Problem handling: trouble tickets, service problems and alarms."""
