"""The theorem bank: seed theorems (YAML under seeds/), their SQLite store, and retrieval over them.

    from theorem_bank import open_bank
    bank = open_bank()                      # builds the cache DB on first use or when seeds changed
    bank.get("pythagorean_theorem")         # theorem dict or None
    bank.retrieve("right triangle, find the hypotenuse", k=5)   # list[Hit]
"""
from theorem_bank.schema import (DOMAINS, SEEDS_DIR, TheoremError, TheoremLookup, core_theorems, load_seeds,
                                 validate_theorems)
from theorem_bank.store import Bank, Hit, build_db, default_db_path, open_bank

__all__ = [
    "TheoremLookup",
    "core_theorems",
    "DOMAINS",
    "SEEDS_DIR",
    "Bank",
    "Hit",
    "TheoremError",
    "build_db",
    "default_db_path",
    "load_seeds",
    "open_bank",
    "validate_theorems",
]
