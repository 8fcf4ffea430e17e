"""Prefect tasks: thin wrappers that add names, retries and concurrency to Bindery's plain functions."""
