from pcls.cli import main

main()
