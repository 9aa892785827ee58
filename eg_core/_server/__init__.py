"""The web server: the tornado application, its REST and websocket handlers, the command line and
configuration loading. Internal: plugins use the public kit (see :mod:`eg_core`)."""
