"""POST /api/{user_id}/tasks: create a task (201)."""

from mangum import Mangum

# Keyed creates (with an Idempotency-Key) run in this module: imported here, at init, so that the
# first keyed request does not pay for it (about 6 ms of CPU); the other task functions never do.
import todo_core.tasks.keyed  # noqa: F401
from todo_core.api import create_app
from todo_core.observability import instrument
from todo_core.tasks.routes import router

app = create_app(router, route="create_task")
handler = instrument(Mangum(app, lifespan="off"))
