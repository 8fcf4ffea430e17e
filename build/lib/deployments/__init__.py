"""Prefect deployments of Bindery's flows (see prefect.yaml)."""
