"""POST /api/{user_id}/chat: one stateless chat turn."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.routes import router

app = create_app(router, route="chat")
handler = Mangum(app, lifespan="off")
