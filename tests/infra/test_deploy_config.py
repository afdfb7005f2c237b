"""The deploy path's promises: CI assumes a role through OIDC (no stored keys), migrates before
it deploys, and samconfig.toml's dev and prod stages name their own parameters."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from devserver.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def _workflow() -> dict[Any, Any]:
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "aws-access-key-id" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text
    workflow: dict[Any, Any] = yaml.safe_load(text)
    return workflow


def test_workflow_deploys_with_oidc_after_tests_and_migrations() -> None:
    jobs = _workflow()["jobs"]
    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"]["id-token"] == "write"
    runs = [step.get("run", "") + step.get("uses", "") for step in deploy["steps"]]
    order = [
        next(i for i, run in enumerate(runs) if marker in run)
        for marker in ("configure-aws-credentials", "make migrate", "make build", "sam deploy")
    ]
    assert order == sorted(order)
    assert any("make test" in step.get("run", "") for step in jobs["test"]["steps"])


def test_samconfig_stages_match_the_template_parameters() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    declared = set(load_template(ROOT / "template.yaml")["Parameters"])
    for stage in ("dev", "prod"):
        deploy = config[stage]["deploy"]["parameters"]
        overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
        assert set(overrides) <= declared
        assert overrides["Stage"] == stage
        assert deploy["stack_name"] == f"todo-api-{stage}"
        assert f"/{stage}/" in overrides["DatabaseUrlParameterName"]
        assert f"/{stage}/" in overrides["BetterAuthSecretParameterName"]


def test_oidc_role_trusts_only_this_repository() -> None:
    role = load_template(ROOT / "infra" / "github-oidc-role.yaml")["Resources"]["DeployRole"]
    statement = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    condition = statement["Condition"]
    assert condition["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"
    }
    subjects = condition["StringLike"]["token.actions.githubusercontent.com:sub"]
    assert all(s["Sub"].startswith("repo:${GitHubOrg}/${RepositoryName}:") for s in subjects)
