"""GET /health: liveness, and the database on request. No auth."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.health import router
from todo_core.observability import instrument

app = create_app(router, route="health")
handler = instrument(Mangum(app, lifespan="off"))
