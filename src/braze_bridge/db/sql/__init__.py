"""Named SQL of the hot paths (`-- name: xyz` headers), loaded by braze_bridge.db.driver."""
