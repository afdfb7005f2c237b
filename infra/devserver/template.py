"""Reads the routes out of ``template.yaml``: which function serves which method and path."""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that accepts CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    return {suffix: loader.construct_mapping(node, deep=True)}


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506
    return document


@dataclass(frozen=True)
class Route:
    """One HttpApi event of one function."""

    function: str  # the logical id in the template
    method: str  # upper case, or "ANY"
    path: str  # API Gateway's template, e.g. /api/{user_id}/tasks/{task_id}
    code_dir: Path
    handler: str  # "module.attribute", e.g. "app.handler"

    @property
    def source(self) -> Path:
        """The handler's module file, e.g. ``functions/get_task/app.py``."""
        module_name = self.handler.rpartition(".")[0]
        return self.code_dir / f"{module_name.replace('.', '/')}.py"

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = ""
        for segment in self.path.strip("/").split("/"):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            param = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                regex += f"/(?P<{greedy.group(1)}>.+)"
            elif param:
                regex += f"/(?P<{param.group(1)}>[^/]+)"
            else:
                regex += "/" + re.escape(segment)
        return re.compile(regex or "/")

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers the route with more literal segments, then the longer one."""
        segments = self.path.strip("/").split("/")
        return (sum(1 for s in segments if not s.startswith("{")), len(segments))


def read_routes(template_path: Path) -> list[Route]:
    """Every HttpApi route in the template, most specific first."""
    template = load_template(template_path)
    globals_ = template.get("Globals", {}).get("Function", {})
    routes: list[Route] = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        code_uri = properties.get("CodeUri", globals_.get("CodeUri"))
        handler = properties.get("Handler", globals_.get("Handler"))
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            event_properties = event.get("Properties", {})
            routes.append(
                Route(
                    function=logical_id,
                    method=str(event_properties.get("Method", "ANY")).upper(),
                    path=event_properties["Path"],
                    code_dir=(template_path.parent / code_uri).resolve(),
                    handler=handler,
                )
            )
    routes.sort(key=lambda route: route.specificity, reverse=True)
    return routes


def import_function(source: Path, name: str) -> ModuleType:
    """Import a function's module from its file, as Lambda does, under a name of its own (every
    function's module is ``app.py``, so the file name cannot be the module name)."""
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
