"""The ops web console: static HTML/CSS/JS served by the app at /console (no build step)."""
