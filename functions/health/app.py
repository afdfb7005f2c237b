"""GET /health: liveness, and the database on request. No auth."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.health import router

app = create_app(router, route="health")
handler = Mangum(app, lifespan="off")
