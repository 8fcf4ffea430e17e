"""SQLModel tables and their public shapes, one family per table (XBase, X, XCreate, XPublic)."""

from models.accounts import Account, Binding, User
from models.audit import AuditEvent
from models.catalog import Batch, Device, TrustAnchor

__all__ = ["Account", "AuditEvent", "Batch", "Binding", "Device", "TrustAnchor", "User"]
