"""GET /api/{user_id}/conversations/{conversation_id}/messages: a page."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.routes import router

app = create_app(router, route="list_messages")
handler = Mangum(app, lifespan="off")
