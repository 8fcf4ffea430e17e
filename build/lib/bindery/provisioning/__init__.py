"""Provisioning: records, leases, quotas, and the steps that move devices into Product Clouds."""
