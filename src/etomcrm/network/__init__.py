"""The network side: service and resource management behind a TMF-shaped port.

Not CRM, but every flow needs it. The default is a simulator with seeded randomness; a
real OSS replaces it by implementing the same port.
"""
