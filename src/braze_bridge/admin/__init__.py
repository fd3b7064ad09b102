"""Admin use cases: tenants, tokens, connections (the services behind api/)."""
