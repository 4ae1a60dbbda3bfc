from foldflow.cli import main

main()
