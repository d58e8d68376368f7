"""The inventory model: agencies, information systems (with their security level), hosts, networks.

`load_inventory(DIR)` reads and checks an inventory directory (format: inventory/README.md) and returns an
`Inventory`; a malformed one raises `InventoryError` (an `InputError`) listing every problem.
"""

from provsec.inventory.load import load_inventory
from provsec.inventory.model import (
    ROLE_GROUPS,
    Agency,
    Host,
    InformationSystem,
    Inventory,
    InventoryError,
    Networks,
    Problem,
    Province,
)

__all__ = [
    "ROLE_GROUPS",
    "Agency",
    "Host",
    "InformationSystem",
    "Inventory",
    "InventoryError",
    "Networks",
    "Problem",
    "Province",
    "load_inventory",
]
