"""moto_server, deciding DynamoDB requests one at a time.

moto keeps its state in plain Python objects, and its threaded server lets
two conditional writes that arrive together both pass their condition, which
DynamoDB never allows. The tests hold the incident store's conditional claims
to "one sender per notification" under concurrent invocations, so DynamoDB
requests are decided one after another, as DynamoDB does per item. Other
services stay concurrent: an SQS long poll or a CreateStack must not hold up
every other test's requests (a test's short timeouts would then measure the
neighbours, not the product).
"""
import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _dynamodb_one_at_a_time(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _lock:
            return _dispatch(self, environ, start_response)
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dynamodb_one_at_a_time

if __name__ == "__main__":
    sys.exit(server.main(sys.argv[1:]))
