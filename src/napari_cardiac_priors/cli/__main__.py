"""``python -m napari_cardiac_priors.cli``: the ``cardiac-priors`` command."""

import sys

from . import main

sys.exit(main())
