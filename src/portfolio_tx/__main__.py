from portfolio_tx.cli import main

raise SystemExit(main())
