"""GET /api/{user_id}/conversations: most recently active first."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.history_routes import router
from todo_core.observability import instrument

app = create_app(router, route="list_conversations")
handler = instrument(Mangum(app, lifespan="off"))
