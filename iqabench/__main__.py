from iqabench.cli import main

raise SystemExit(main())
