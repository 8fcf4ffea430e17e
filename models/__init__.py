"""SQLModel tables and their public shapes, one family per table (XBase, X, XCreate, XPublic)."""

from bindery.models.accounts import Account, Binding, User
from bindery.models.audit import AuditEvent
from bindery.models.catalog import Batch, Device, TrustAnchor
from bindery.models.clouds import CloudApi, SigningKey
from bindery.models.provisioning import AccountSettings, ProvisioningRecord, QuotaPace, RunLease, ShardLease
from bindery.models.runs import Run
from bindery.models.transfers import Custody, Transfer
from bindery.models.web import ApiToken, LoginThrottle, WebSession

__all__ = [
    "Account", "AccountSettings", "ApiToken", "AuditEvent", "Batch", "Binding", "CloudApi", "Custody", "Device",
    "LoginThrottle", "ProvisioningRecord", "QuotaPace", "Run", "RunLease", "ShardLease", "SigningKey", "Transfer",
    "TrustAnchor", "User", "WebSession",
]
