"""`python -m facebone` runs the command line."""

import sys

from facebone.cli import main

sys.exit(main())
