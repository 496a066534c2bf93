"""`python -m inventory.ops dlq ...` (with layers/domain on PYTHONPATH; `make dlq ARGS="..."`)."""

import sys

from inventory.ops.cli import main

sys.exit(main())
