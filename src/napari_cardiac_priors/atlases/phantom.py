"""The bundled ``atlases-phantom`` set: HR phantoms with exact labels and landmarks
(``python -m napari_cardiac_priors.atlases.phantom`` rebuilds it; ``make atlases``)."""

from __future__ import annotations


def phantom_atlases(n: int = 20, *, seed: int = 7000) -> list:
    """``n`` HR phantom :class:`~..registry.atlases.Atlas` (ED and ES alternating, all
    pathologies) with exact labels and landmarks."""
    from ..phantom import PATHOLOGIES, make_subject
    from ..registry.atlases import Atlas

    atlases = []
    for i in range(n):
        ph = make_subject(seed + i, pathology=PATHOLOGIES[i % len(PATHOLOGIES)])["ed" if i % 2 == 0 else "es"]
        atlases.append(Atlas(f"phantom{seed + i}_{ph.info['phase']}_{ph.info['pathology']}", ph.labels, ph.landmarks))
    return atlases


if __name__ == "__main__":  # pragma: no cover - developer tool: `make atlases`
    from ..registry.atlases import write_atlas_set

    write_atlas_set(
        phantom_atlases(20), "atlases-phantom", bundled=True, overwrite=True,
        description="20 HR phantom atlases (1.25 x 1.25 x 2 mm; NOR, DCM, HCM, MINF, RV; ED and ES): exact labels and landmarks",
        license="BSD-3-Clause (synthetic)", training={"data": "phantom", "seeds": "7000-7019"},
    )
