"""SQLModel tables and their public shapes, one family per table (XBase, X, XCreate, XPublic)."""

from models.audit import AuditEvent
from models.catalog import Batch, Device, TrustAnchor

__all__ = ["AuditEvent", "Batch", "Device", "TrustAnchor"]
