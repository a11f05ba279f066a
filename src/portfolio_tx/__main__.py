from portfolio_tx.commands.cli import main

raise SystemExit(main())
