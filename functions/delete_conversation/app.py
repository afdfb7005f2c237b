"""DELETE /api/{user_id}/conversations/{conversation_id} (204)."""

from mangum import Mangum

from todo_core.api import create_app
from todo_core.chat.routes import router

app = create_app(router, route="delete_conversation")
handler = Mangum(app, lifespan="off")
