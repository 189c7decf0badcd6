"""The upstream hub's HTTP API: reading (revision info, listings, downloads) and writing (create repo,
preupload, LFS uploads, commits), over one retrying, rate-gated session. The only part that speaks HTTP to
upstream."""

from __future__ import annotations

from ._client import UpstreamClient, upstream_client
from ._gate import RateGate
from ._http import HubSession
from ._uploads import CommitResult, HubWriter, LocalFile

__all__ = ["CommitResult", "HubSession", "HubWriter", "LocalFile", "RateGate", "UpstreamClient", "upstream_client"]
