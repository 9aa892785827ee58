from ._server.cli import main

main()
