"""The bundled ``atlases-acdc`` set: one atlas per ACDC training patient and phase (never a
validation patient of the models), built with :func:`.from_labels.atlas_from_labels`."""

from __future__ import annotations

ATLAS_SET = "atlases-acdc"


def acdc_atlases(root, ids) -> tuple[list, dict]:
    """Atlases from the manual ED and ES labels of ACDC patients ``ids`` (ids ``patientNNN_ed``),
    and ``{id: reason}`` of the label maps that cannot be one (fewer than 4 landmarks measurable)."""
    from ..errors import InputError
    from ..io.acdc import iter_patients
    from .from_labels import atlas_from_labels

    atlases, skipped = [], {}
    for p in iter_patients(root, ids=ids):
        for phase in ("ed", "es"):
            try:
                atlases.append(atlas_from_labels(p.labels(phase), f"{p.id}_{phase}"))
            except InputError as e:
                skipped[f"{p.id}_{phase}"] = str(e)
    return atlases, skipped


def build_bundled(root=None) -> None:  # pragma: no cover - developer tool: `python -m napari_cardiac_priors.atlases.acdc`
    """Build ``atlases-acdc`` from the ACDC training patients into the package's model library."""
    from ..io.acdc import ACDC_CITATION, ACDC_LICENSE, default_root
    from ..registry.atlases import write_atlas_set
    from ..training.recipes import ACDC_TRAINING, ACDC_VALIDATION

    atlases, skipped = acdc_atlases(root or default_root(), ACDC_TRAINING)
    write_atlas_set(
        atlases, ATLAS_SET, bundled=True, overwrite=True,
        description=f"{len(atlases)} real-anatomy atlases (HR 1.25 x 1.25 x 2 mm; LV, MYO, RV; no RV wall) from the "
                    "manual ED and ES labels of the 80 ACDC training patients: breath-hold shifts corrected, shape-based "
                    "interpolation, base and apex closed, landmarks measured on the result",
        license=f"{ACDC_LICENSE} (derived from ACDC manual labels; non-commercial research only)",
        training={"data": "acdc", "patients": list(ACDC_TRAINING), "held_out": list(ACDC_VALIDATION),
                  "method": "atlases.from_labels.atlas_from_labels", "skipped": skipped},
        citation=f"ACDC: {ACDC_CITATION}",
    )


if __name__ == "__main__":  # pragma: no cover
    build_bundled()
