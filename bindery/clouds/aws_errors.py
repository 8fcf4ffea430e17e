"""AWS's errors in Bindery's tree (Transient/Permanent), for the aws-iot connector and its pipeline."""

from __future__ import annotations

from typing import Any

import botocore.exceptions as boto_errors
from botocore.parsers import ResponseParserError

from bindery.clouds.base import ConnectorError, Permanent, Transient

TRANSIENT_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
                   "ServiceUnavailableException", "InternalFailureException", "InternalServerException",
                   "RequestTimeout", "RequestTimeoutException"}
TRANSPORT_ERRORS = (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError,
                    boto_errors.ReadTimeoutError, boto_errors.ConnectionClosedError,
                    boto_errors.ProxyConnectionError)


def map_error(exc: Exception, call: str) -> ConnectorError:
    """botocore's errors into Bindery's tree, at this boundary only."""
    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        message = f"{call}: {code or status}: {str(error.get('Message', ''))[:200]}"
        retry_after = _seconds(headers.get("retry-after"))
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return Transient(message, retry_after)
        return Permanent(message)
    if isinstance(exc, TRANSPORT_ERRORS):
        return Transient(f"{call}: {exc.__class__.__name__}")
    if isinstance(exc, ResponseParserError | KeyError | TypeError):
        return Permanent(f"{call}: malformed response from AWS IoT")
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return Permanent(f"{call}: no AWS credentials in the standard chain")
    if isinstance(exc, boto_errors.BotoCoreError):
        return Permanent(f"{call}: {exc.__class__.__name__}")
    raise exc


def throttled(exc: Exception) -> bool:
    if not isinstance(exc, boto_errors.ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in ("ThrottlingException", "Throttling", "TooManyRequestsException") or status == 429


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
