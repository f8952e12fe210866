import sys

from zmongo.demo.main import main

sys.exit(main())
