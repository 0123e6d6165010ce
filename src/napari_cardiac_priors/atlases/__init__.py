"""Building atlas sets for refinement: from labelled low-resolution stacks (any group's own
population; :mod:`.from_labels`) and the ACDC set bundled with the package (:mod:`.acdc`)."""
