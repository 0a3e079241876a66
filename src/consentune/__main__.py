import sys

from consentune.cli import main

sys.exit(main())
