"""Building atlas sets for refinement: from labelled low-resolution stacks (any group's own
population; :mod:`.from_labels`), from HR images and a model (:mod:`.from_images`), and the
sets bundled with the package (:mod:`.acdc`, :mod:`.phantom`). Storing and loading them is
the registry's (:mod:`~napari_cardiac_priors.registry.atlases`)."""
