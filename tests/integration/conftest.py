"""Fixtures shared by the integration tests (admin API: two tenants with their tokens)."""

from tests.integration.admin_support import tenant_a, tenant_b

__all__ = ["tenant_a", "tenant_b"]
