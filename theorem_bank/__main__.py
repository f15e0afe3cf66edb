import sys

from theorem_bank.cli import main

sys.exit(main())
