"""template.yaml's promises that sam validate cannot check: every function runs with the shared
role and the layer, secrets are named (never given) in the environment, and the local sample
environment matches what the devserver's local secret signs."""

from __future__ import annotations

import json
from pathlib import Path

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_template_every_function_uses_the_shared_role() -> None:
    template = load_template(ROOT / "template.yaml")
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions
    for name, properties in functions.items():
        assert properties.get("Role") == {"GetAtt": "FunctionRole.Arn"}, name
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


def test_template_role_reads_only_the_two_parameters() -> None:
    role = load_template(ROOT / "template.yaml")["Resources"]["FunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    actions = []
    for policy in role["Policies"]:
        for entry in policy["PolicyDocument"]["Statement"]:
            statement = entry["If"][1] if "If" in entry else entry  # the KMS key's condition
            action = statement["Action"]
            actions.extend([action] if isinstance(action, str) else action)
    assert sorted(actions) == [
        "kms:Decrypt",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
    ]


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
