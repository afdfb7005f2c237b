"""The model's settings fail fast, naming the variable at fault."""

from __future__ import annotations

import pytest

from todo_core.errors import ConfigurationError
from todo_core.settings import load_settings

BASE = {"DATABASE_URL": "postgresql://u@h/db", "CHAT_ASSISTANT": "openai"}
MODEL = {**BASE, "OPENAI_API_KEY": "sk-test", "CHAT_MODEL": "gpt-test"}


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        (BASE, "OPENAI_API_KEY"),
        ({**BASE, "OPENAI_API_KEY": "sk-test"}, "CHAT_MODEL"),
        ({**MODEL, "CHAT_MODEL_TIMEOUT_SECONDS": "60"}, "CHAT_MODEL_TIMEOUT_SECONDS"),
        ({**MODEL, "CHAT_MODEL_TIMEOUT_SECONDS": "0"}, "CHAT_MODEL_TIMEOUT_SECONDS"),
        ({**MODEL, "CHAT_MAX_TOOL_ROUNDS": "0"}, "CHAT_MAX_TOOL_ROUNDS"),
        ({**MODEL, "CHAT_MODEL_MAX_RETRIES": "-1"}, "CHAT_MODEL_MAX_RETRIES"),
        ({**MODEL, "OPENAI_BASE_URL": "http://models.example.com/v1"}, "OPENAI_BASE_URL"),
        ({**MODEL, "CHAT_TURNS_PER_WINDOW": "many"}, "CHAT_TURNS_PER_WINDOW"),
        ({**MODEL, "CHAT_RATE_WINDOW_SECONDS": "0"}, "CHAT_RATE_WINDOW_SECONDS"),
        ({**BASE, "CHAT_ASSISTANT": "gpt"}, "CHAT_ASSISTANT"),
        ({**BASE, "CHAT_ASSISTANT": "OpenAI"}, "CHAT_ASSISTANT"),
        ({**MODEL, "CHAT_MODEL_MAX_OUTPUT_TOKENS": "-1"}, "CHAT_MODEL_MAX_OUTPUT_TOKENS"),
        ({**MODEL, "CHAT_MODEL_MAX_OUTPUT_TOKENS": "1e3"}, "CHAT_MODEL_MAX_OUTPUT_TOKENS"),
        ({**MODEL, "CHAT_MODEL_MAX_TOKENS_FIELD": "max_output"}, "CHAT_MODEL_MAX_TOKENS_FIELD"),
    ],
)
def test_model_settings_name_the_bad_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable) as raised:
        load_settings(environ)
    assert "sk-test" not in str(raised.value)


def test_model_settings_defaults_fit_the_function_timeout() -> None:
    settings = load_settings({**MODEL, "OPENAI_BASE_URL": "http://localhost:11434/v1"})
    assert settings.chat_model == "gpt-test"
    assert settings.openai_base_url == "http://localhost:11434/v1"  # plain http on loopback
    assert settings.chat_model_timeout_seconds == 20
    assert settings.chat_model_max_retries == 1
    assert (settings.chat_turns_per_window, settings.chat_rate_window_seconds) == (30, 60)


def test_model_settings_builtin_needs_no_key() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://u@h/db"})
    assert (settings.chat_assistant, settings.openai_api_key) == ("builtin", None)


def test_model_settings_name_every_assistant_there_is() -> None:
    from todo_core.chat.assistant import ASSISTANTS  # noqa: PLC0415
    from todo_core.settings import ASSISTANT_NAMES  # noqa: PLC0415

    assert set(ASSISTANT_NAMES) == set(ASSISTANTS)
