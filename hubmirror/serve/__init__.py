"""``hubmirror serve``: the Hub's HTTP API over the store and index, so clients can set ``HF_ENDPOINT``.

Starlette and uvicorn stay inside this package. Read endpoints answer from the index (cached per commit)
and stream blobs from the store; write endpoints (with ``serve.token``) accept pushes from the real
``huggingface_hub`` client and record them as normal commits.
"""

from __future__ import annotations

from .app import BackgroundServer, ServeSettings, create_app, run

__all__ = ["BackgroundServer", "ServeSettings", "create_app", "run"]
