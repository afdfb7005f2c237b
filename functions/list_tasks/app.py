"""GET /api/{user_id}/tasks: the caller's tasks, newest first."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.observability import instrument
from todo_core.tasks.routes import router

app = create_app(router, route="list_tasks")
handler = instrument(Mangum(app, lifespan="off"))
