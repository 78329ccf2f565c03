"""`python -m tools.synthetic_chain --out DIR --start YYYY-MM-DD ...`: see `--help`."""
import sys

from tools.synthetic_chain import main

sys.exit(main())
