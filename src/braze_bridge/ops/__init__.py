"""Ops use cases: event log, replay, health, retention (the services behind api/ and console/)."""
