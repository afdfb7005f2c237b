"""The shared layer of the Todo API: settings, models, database, auth, errors and services.

Every Lambda function imports this package from the layer (``/opt/python/todo_core``); the local
server and the tests import the very same package from ``shared/``.
"""
