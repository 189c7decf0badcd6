"""Crossing the air gap: bundles of what the far side lacks (export), verified on arrival (import), and the
inventory that tells one side what the other has."""

from __future__ import annotations

from ._export import Exporter, ExportReport
from ._format import BundleError
from ._import import Importer, ImportReport, blobs_from_bundle
from ._inventory import write_inventory

__all__ = [
    "BundleError",
    "ExportReport",
    "Exporter",
    "ImportReport",
    "Importer",
    "blobs_from_bundle",
    "write_inventory",
]
