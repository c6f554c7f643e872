"""The demonstration scenario: BMW AG's dealer and supplier extranet (DESIGN.md section 5)."""
