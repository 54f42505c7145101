from evolve.cli.app import main

main()
