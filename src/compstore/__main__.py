"""``python -m compstore`` runs the command line."""

import sys

from compstore.cli import main

sys.exit(main())
