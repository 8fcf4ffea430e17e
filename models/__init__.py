"""SQLModel tables and their public shapes, one family per table (XBase, X, XCreate, XPublic)."""

from models.accounts import Account, Binding, User
from models.audit import AuditEvent
from models.catalog import Batch, Device, TrustAnchor
from models.clouds import CloudApi, SigningKey

__all__ = ["Account", "AuditEvent", "Batch", "Binding", "CloudApi", "Device", "SigningKey", "TrustAnchor", "User"]
