from invobench.cli import main

main()
