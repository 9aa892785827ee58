"""What a plugin's web handlers (``eg_web_handlers``) derive from.

:class:`APIHandler` is a tornado ``RequestHandler`` with the gateway's token auth, CORS headers
and JSON errors (raise :class:`eg_core.BadRequest`, :class:`eg_core.NotFound`...)::

    class QuotaHandler(APIHandler):
        def get(self):
            self.finish({"quota": 3})

    @hookimpl
    def eg_web_handlers():
        return [(r"quota", QuotaHandler)]
"""

from ._server.handlers import APIHandler

__all__ = ["APIHandler"]
