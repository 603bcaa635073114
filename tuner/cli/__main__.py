"""``python -m tuner.cli``."""

import sys

from tuner.cli.entry import main

sys.exit(main())
