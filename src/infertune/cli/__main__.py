"""`python -m infertune.cli ...` (the tests and the fuzzing campaign start the CLI this way)."""
import sys

from . import main

sys.exit(main())
