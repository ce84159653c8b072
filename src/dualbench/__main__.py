from dualbench.cli import main

raise SystemExit(main())
