"""braze-bridge: Extole and Antavo webhooks, delivered to Braze."""
