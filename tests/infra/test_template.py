"""template.yaml's promises that sam validate cannot check: every function runs with its role
(the chat function alone may read the model key) and the layer, secrets are named (never given)
in the environment, and the local sample environment matches what the devserver's local secret
signs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_template_every_function_uses_its_role() -> None:
    template = load_template(ROOT / "template.yaml")
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) == 11
    for name, properties in functions.items():
        role = "ChatFunctionRole" if name == "ChatFunction" else "FunctionRole"
        assert properties.get("Role") == {"GetAtt": f"{role}.Arn"}, name
        assert "Policies" not in properties, name


def test_template_environment_names_secrets_without_values() -> None:
    template = load_template(ROOT / "template.yaml")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DATABASE_URL_PARAMETER"] == {"Ref": "DatabaseUrlParameterName"}
    assert variables["BETTER_AUTH_SECRET_PARAMETER"] == {"Ref": "BetterAuthSecretParameterName"}
    assert variables["DATABASE_URL"] == ""
    assert variables["BETTER_AUTH_SECRET"] == ""
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "SharedLayer"}]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    # An entry under a condition (the KMS key's) counts as its statement.
    return [entry["If"][1] if "If" in entry else entry for entry in document["Statement"]]


def _parameters(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [
        r["Sub"].rsplit("parameter", 1)[1]
        for r in (resources if isinstance(resources, list) else [resources])
    ]


def test_template_roles_read_only_their_parameters() -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    shared = resources["FunctionPolicy"]["Properties"]
    assert shared["Roles"] == [{"Ref": "FunctionRole"}, {"Ref": "ChatFunctionRole"}]
    actions: list[str] = []
    parameters: list[str] = []
    for statement in _statements(shared["PolicyDocument"]):
        action = statement["Action"]
        actions.extend([action] if isinstance(action, str) else action)
        if action == "ssm:GetParameter":
            parameters.extend(_parameters(statement))
    assert sorted(actions) == [
        "kms:Decrypt",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
    ]
    assert parameters == ["${DatabaseUrlParameterName}", "${BetterAuthSecretParameterName}"]
    # Every other function's role holds nothing of its own.
    role = resources["FunctionRole"]["Properties"]
    assert "Policies" not in role
    assert "ManagedPolicyArns" not in role
    # The chat role adds the model key, and only when a model answers.
    chat = resources["ChatFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in chat
    condition, policies, otherwise = chat["Policies"]["If"]
    assert (condition, otherwise) == ("ChatUsesModel", {"Ref": "AWS::NoValue"})
    (policy,) = policies
    (statement,) = _statements(policy["PolicyDocument"])
    assert statement["Action"] == "ssm:GetParameter"
    assert _parameters(statement) == ["${OpenAIApiKeyParameterName}"]


def test_template_local_invoke_environment_uses_the_local_secret() -> None:
    variables = json.loads((ROOT / "events" / "env.json").read_text())["Parameters"]
    declared = load_template(ROOT / "template.yaml")["Globals"]["Function"]["Environment"]
    assert set(variables) <= set(declared["Variables"])  # sam ignores undeclared variables
    assert variables["BETTER_AUTH_SECRET"] == LOCAL_DEV_SECRET
    assert variables["DATABASE_URL_PARAMETER"] == variables["BETTER_AUTH_SECRET_PARAMETER"] == ""


def test_template_chat_function_fits_a_model_turn() -> None:
    from todo_core.chat.service import TURN_LEASE_SECONDS  # noqa: PLC0415
    from todo_core.settings import CHAT_MODEL_TIMEOUT_MAX_SECONDS  # noqa: PLC0415

    chat = load_template(ROOT / "template.yaml")["Resources"]["ChatFunction"]["Properties"]
    timeout = chat["Timeout"]
    variables = chat["Environment"]["Variables"]
    # The HTTP API gives up at 30 s; the model's budget leaves room for the turn's statements;
    # the key's lease outlives the function, so a live attempt is never taken over.
    assert float(variables["CHAT_MODEL_TIMEOUT_SECONDS"]) < CHAT_MODEL_TIMEOUT_MAX_SECONDS < timeout
    assert timeout < 30 < TURN_LEASE_SECONDS
    # The key is named, never given; only with a model.
    assert variables["OPENAI_API_KEY"] == ""
    assert variables["OPENAI_API_KEY_PARAMETER"] == {
        "If": ["ChatUsesModel", {"Ref": "OpenAIApiKeyParameterName"}, ""]
    }


def test_template_functions_have_the_timeouts_readme_states() -> None:
    from todo_core.settings import load_settings  # noqa: PLC0415

    template = load_template(ROOT / "template.yaml")
    default = template["Globals"]["Function"]["Timeout"]
    timeouts = {
        name: resource["Properties"].get("Timeout", default)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # README, "Timeouts": 10 s for a function, 29 s for the chat (an HTTP API gives up at 30 s);
    # 10 s leave room for a database connection that gives up (then a 503) and the request.
    assert timeouts.pop("ChatFunction") == 29
    assert set(timeouts.values()) == {10}
    connect = load_settings({"DATABASE_URL": "postgresql://u@h/db"}).db_connect_timeout_seconds
    assert connect == 2 < default
