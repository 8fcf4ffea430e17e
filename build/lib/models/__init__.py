"""SQLModel tables and their public shapes, one family per table (XBase, X, XCreate, XPublic)."""

from models.accounts import Account, Binding, User
from models.audit import AuditEvent
from models.catalog import Batch, Device, TrustAnchor
from models.clouds import CloudApi, SigningKey
from models.provisioning import AccountSettings, ProvisioningRecord, QuotaPace, RunLease, ShardLease
from models.web import ApiToken, LoginThrottle, WebSession

__all__ = [
    "Account", "AccountSettings", "ApiToken", "AuditEvent", "Batch", "Binding", "CloudApi", "Device", "LoginThrottle",
    "ProvisioningRecord", "QuotaPace", "RunLease", "ShardLease", "SigningKey", "TrustAnchor", "User", "WebSession",
]
