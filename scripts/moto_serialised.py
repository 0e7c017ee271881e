"""moto_server, handling one request at a time (connections stay concurrent).

moto keeps its state in plain Python objects, and its threaded server lets
two conditional writes that arrive together both pass their condition, which
DynamoDB never allows. The tests hold the alert gate's conditional claims to
"one sender per key" under concurrent invocations, so the backend must decide
requests one after another, as DynamoDB does per item.
"""
import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    with _lock:
        return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _one_at_a_time

if __name__ == "__main__":
    sys.exit(server.main(sys.argv[1:]))
