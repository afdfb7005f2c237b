"""GET /api/{user_id}/conversations: most recently active first."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.routes import router

app = create_app(router, route="list_conversations")
handler = Mangum(app, lifespan="off")
