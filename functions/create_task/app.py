"""POST /api/{user_id}/tasks: create a task (201)."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.observability import instrument
from todo_core.tasks.routes import router

app = create_app(router, route="create_task")
handler = instrument(Mangum(app, lifespan="off"))
