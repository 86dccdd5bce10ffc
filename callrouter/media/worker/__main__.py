"""`python -m callrouter.media.worker`: see main.py."""

import sys

from callrouter.media.worker.main import main

sys.exit(main())
