"""POST /api/{user_id}/chat: one stateless chat turn."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.routes import router
from todo_core.observability import instrument

app = create_app(router, route="chat")
handler = instrument(Mangum(app, lifespan="off"))
