"""One configuration of a store as an extended XYZ file (``tbotan export xyz STORE T c OUT``).

The thermal positions (17 significant digits) with the species A/B, a ``Z`` column (1 = A, 2 = B, for ASE) and the
configuration's inherent structure as an ``inherent:R:3`` column, so that ``tbotan predict`` takes it instead of
quenching again; ``T``, ``configuration`` and the inherent structure's ``fire_residual`` go on the comment line.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from ..md import xyz
from . import store


def export_xyz(store_path, temperature: float, c: int, out) -> Path:
    """Write configuration ``c`` of the store's group at ``temperature`` to ``out``; an error if it is not done."""
    root = store.open_store(store_path)
    name = store.group_name(float(temperature))
    if name not in root:
        raise StoreError(f"{store_path}: no temperature {temperature:g} (it has {store.temperatures(root)})")
    g = root[name]
    if not 0 <= c < g["done"].shape[0] or not g["done"][c]:
        raise StoreError(f"{store_path}: configuration {c} at T={temperature:g} is not a finished configuration")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    residual = float(g["fire_residual"][c]) if "fire_residual" in g else float("nan")
    xyz.write_columns(
        out,
        g["types"][c],
        g["thermal"][c],
        float(g.attrs["L"]),
        {"inherent": g["inherent"][c]},
        comment=f"T={float(temperature)!r} configuration={c} fire_residual={residual!r}",
    )
    return out
