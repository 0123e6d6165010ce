"""Training: cases and augmentation (:mod:`.data`), recipes (:mod:`.recipes`), the loop (:mod:`.loop`)."""
