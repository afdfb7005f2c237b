"""DELETE /api/{user_id}/tasks/{task_id}: delete a task (204)."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.observability import instrument
from todo_core.tasks.routes import router

app = create_app(router, route="delete_task")
handler = instrument(Mangum(app, lifespan="off"))
