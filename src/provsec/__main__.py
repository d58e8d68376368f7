import sys

from provsec.cli import main

sys.exit(main())
