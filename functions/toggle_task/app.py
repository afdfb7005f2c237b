"""PATCH /api/{user_id}/tasks/{task_id}/complete: toggle completion."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.observability import instrument
from todo_core.tasks.routes import router

app = create_app(router, route="toggle_task")
handler = instrument(Mangum(app, lifespan="off"))
