"""Fixtures of the end-to-end tests: one headless Chromium (tests/support/browser.py)."""

from tests.support.browser import browser

__all__ = ["browser"]
